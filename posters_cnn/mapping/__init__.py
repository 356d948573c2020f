"""Stage 3 (``get_data_visu.py``): ``stage`` makes the map, with ``layout`` (PCA, t-SNE, the grid),
``similarity`` (similar posters and closest pairs), ``clusters`` (clusters and regions) and ``tiles``
(the imagery's pyramid); ``data.schema.json`` describes the ``data.json`` it writes."""
