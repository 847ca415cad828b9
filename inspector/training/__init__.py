"""Making a model: data sets and their check, the plan (budget, base, size), training and its progress,
the procedural pre-training corpus, and honest evaluation on labelled parts."""
