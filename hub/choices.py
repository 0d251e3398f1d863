"""The tasks and licenses an adapter can declare (Hugging Face spellings)."""

TASKS = [
    ("text-generation", "Text generation"),
    ("text2text-generation", "Text-to-text generation"),
    ("summarization", "Summarization"),
    ("translation", "Translation"),
    ("question-answering", "Question answering"),
    ("text-classification", "Text classification"),
    ("token-classification", "Token classification"),
    ("other", "Other"),
]
# What peft's task_type suggests when the uploader does not say.
TASK_FOR_PEFT_TASK_TYPE = {
    "CAUSAL_LM": "text-generation",
    "SEQ_2_SEQ_LM": "text2text-generation",
    "SEQ_CLS": "text-classification",
    "TOKEN_CLS": "token-classification",
    "QUESTION_ANS": "question-answering",
}
LICENSES = [
    ("apache-2.0", "Apache 2.0"),
    ("mit", "MIT"),
    ("bsd-3-clause", "BSD 3-Clause"),
    ("cc-by-4.0", "CC BY 4.0"),
    ("cc-by-sa-4.0", "CC BY-SA 4.0"),
    ("cc-by-nc-4.0", "CC BY-NC 4.0"),
    ("openrail", "OpenRAIL"),
    ("llama3", "Llama 3 Community"),
    ("gemma", "Gemma"),
    ("other", "Other"),
]
TASK_LABELS = dict(TASKS)
LICENSE_LABELS = dict(LICENSES)
