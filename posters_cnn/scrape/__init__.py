"""Stage 1 (``get_posters.py``): ``stage`` walks impawards.com's year indexes, or indexes a folder
(``--from-dir``), downloads each poster, makes its thumbnail and writes ``posters.csv``; ``http`` is its
polite client (deadlines, size caps, backoff, ``robots.txt``)."""
