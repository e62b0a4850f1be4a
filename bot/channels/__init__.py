"""Messaging channels: Slack, Telegram, Messenger, Twilio SMS/WhatsApp and Teams.

One module per platform (its API adapter and its Rasa input channel), on top of ``base``
(authentication first, acknowledge at once, at most once, account linking) and ``render``
(each platform's form). ``registry`` says which are on and writes Rasa's credentials file.
"""
