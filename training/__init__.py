"""ghostline's training pipeline: corpus, data, training loop, evaluation."""
