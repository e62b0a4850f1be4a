"""Where the project changes Rasa 3.6.21's behaviour (and python-socketio 5.9's, which Rasa's
socket.io channel runs on), one module per change, each docstring saying why: the tracker
store's engine and indexes, the event broker, the lock store, socket.io's Redis rooms, the
durable inbox of in-flight messages, the speed-ups of a turn and the loading of TensorFlow
models. Each has its tests in tests/rasa_ext/."""
