"""ghostline's model: config, tokenizer, export to CTranslate2 and the inference engine."""
