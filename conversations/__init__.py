"""How the bot asks: guided flows written once as data, and a pure engine that steps them."""
