"""The owner's governed data: schema, validation, de-identification, commitments, contributors."""
