"""The support desk: agents, the handoff queue, cases and what agents answer by email.

It shares the store's database and engine with the wallet (one schema, one migration chain in
``bot/wallet/migrations``) but keeps its own queries (``bot.desk.repository``) and views.
"""
