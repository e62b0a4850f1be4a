"""The shopper-facing web server: the demo store page with the chat widget embedded.

It serves the widget's files (``widget/``), the socket.io client from ``node_modules`` (so the
page needs no outside host), a demo sign-in that mints customer tokens for the demo customers,
and ``/api/mask``, which hides claim codes in a shopper's own message before the widget shows
or stores it. The widget talks to the Rasa server's socket.io channel directly.
"""
