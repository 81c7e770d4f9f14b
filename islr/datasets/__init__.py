"""Where samples come from: INCLUDE folders and split lists, importers (INCLUDE JSON, ``.pose``),
the synthetic sign generator, labelling and splitting. Importers load their heavy dependencies
(``pose_format``) only when called."""
