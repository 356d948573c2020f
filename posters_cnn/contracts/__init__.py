"""The files the stages and the page share, each read and written in one place: ``manifest``
(``posters.csv``, stage 1 to 2 and 3), ``store`` (``features.h5``, stage 2 to 3) and ``geometry`` (where
the map puts each poster and tile: stage 3 to the page, whose ``web/geometry.js`` mirrors it)."""
