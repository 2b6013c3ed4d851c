"""The filter core: public correlation, validation, dispatch and the compiled paths."""
