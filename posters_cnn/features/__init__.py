"""Stage 2 (``get_features_from_cnn.py``): ``stage`` runs VGG-16 over the manifest's posters and
appends their ``fc2`` activations to ``features.h5`` (:mod:`posters_cnn.contracts.store`)."""
