"""The kinds of experiment, one module each (``KIND``: an :class:`ufm.engine.Kind`), listed in :mod:`ufm.registry`.

- :mod:`ufm.kinds.simulate`: one stacked UFM simulation (``ufm simulate``, ``ufm sweep``);
- :mod:`ufm.kinds.solve`: one certified convex solve (``ufm solve-sweep``);
- :mod:`ufm.kinds.map`: one cell of a distance map (``ufm map``);
- :mod:`ufm.kinds.collapse`: one cell of a collapse map (``ufm collapse-map``);
- :mod:`ufm.kinds.train`: one training run (``ufm train``: single, preset, grid, resume; ``ufm study``).

A kind module holds only what the engine needs (run a point into its folder, its rows, its figure, its checks); the
science stays in the modules it calls.
"""
