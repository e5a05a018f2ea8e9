"""The approval desk: a web page where people review, edit, approve and reject the bot's replies."""
