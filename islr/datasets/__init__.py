"""Where samples come from: INCLUDE folders and split lists, importers (INCLUDE JSON, ``.pose``,
the seed notebook's cache, MP_Data, flat ``.npy``, GISLR parquet, OpenHands pickles; see
``formats``) and the export back out, the synthetic sign generator, labelling and splitting.
Importers load their heavy dependencies (``pose_format``, ``pyarrow``) only when called."""
