"""How the bot hears and speaks: one adapter per surface, all speaking `conversations.messages`."""
