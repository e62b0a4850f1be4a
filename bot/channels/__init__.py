"""The channels Rasa listens on (credentials.yml, var/credentials.yml).

The web chat's: ``rest`` and ``socketio``, with what they enforce at the edge in ``edge``.
The messaging platforms': ``slack``, ``telegram``, ``facebook`` (Messenger), ``twilio`` (SMS
and WhatsApp) and ``botframework`` (Teams), one module each (its API adapter and its input
channel), on top of ``base`` (authentication first, acknowledge at once, at most once, account
linking) and ``render`` (each platform's form). ``registry`` says which platforms are on and
writes Rasa's credentials file.
"""
