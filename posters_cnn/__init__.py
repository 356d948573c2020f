"""movie-posters-convnet: an unsupervised map of movie posters.

The three stage scripts at the top of the repository are thin command-line
wrappers over this package:

* :mod:`posters_cnn.scrape`   - stage 1, posters and thumbnails from impawards.com
* :mod:`posters_cnn.features` - stage 2, VGG-16 ``fc2`` ("fc7") features into HDF5
* :mod:`posters_cnn.visu`     - stage 3, PCA + t-SNE, neighbours, pairs, ``data.json``
"""

__version__ = "1.0.0"
USER_AGENT = f"movie-posters-convnet/{__version__} (+https://github.com/aDrz/movie-posters-convnet)"
