"""Pre-training with natural-language adversarial examples: BERT, whole-word, n-gram and MacBERT
(MLM-as-correction) masking, and ELECTRA's replaced token detection."""
