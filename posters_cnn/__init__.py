"""movie-posters-convnet: an unsupervised map of movie posters.

The three stage scripts at the top of the repository are thin command-line
wrappers over this package, one folder per stage, with the files the stages
hand each other described once, in ``contracts/``:

* :mod:`posters_cnn.scrape`    - stage 1: posters and thumbnails from impawards.com, or ``--from-dir``
* :mod:`posters_cnn.features`  - stage 2: VGG-16 ``fc2`` ("fc7") features into HDF5
* :mod:`posters_cnn.mapping`   - stage 3: PCA + t-SNE, neighbours, pairs, clusters, tiles, ``data.json``
* :mod:`posters_cnn.contracts` - ``posters.csv`` (``manifest``), ``features.h5`` (``store``) and the
  map's geometry shared with the page (``geometry``)

Beside them, what every stage uses: ``cli`` (arguments, logging, exit codes), ``fsutil`` (atomic
writes, locks, paths read from files), ``images`` (decoding and its checks), ``concurrency`` and
``names`` (poster ids and versions).
"""

__version__ = "1.0.0"
USER_AGENT = f"movie-posters-convnet/{__version__} (+https://github.com/aDrz/movie-posters-convnet)"
