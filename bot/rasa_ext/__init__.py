"""Where the project changes Rasa 3.6.21's behaviour, one module per change (see each docstring):
the tracker store's engine and indexes, the event broker, the lock store."""
