"""Local fakes of the chat platforms' HTTP APIs, so the real SDKs run end to end offline."""
