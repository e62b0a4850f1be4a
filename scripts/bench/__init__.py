"""``make bench``: the full assistant and a plain ``rasa init`` bot driven side by side by the
same load generator (issue 10), with the results written to docs/performance.md.

- ``journeys``: the scripted 40-turn conversation that walks every journey;
- ``load``: the shoppers (REST, socket.io) and the closed and open loops that drive them;
- ``stacks``: the servers under test (the assistant, its scaled topology, the plain bot);
- ``report``: figures and the markdown report;
- ``__main__``: the run itself (``python -m scripts.bench --help``).
"""
