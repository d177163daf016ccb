//! Barcode content: GS1 element strings, GS1 Digital Link URIs and trace-code classes.
