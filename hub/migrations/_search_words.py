"""The SearchWord rows of the adapters already there (for the data migrations)."""


def words_fill(apps) -> None:
    from hub.services.search import adapter_words

    Adapter = apps.get_model("hub", "Adapter")
    SearchWord = apps.get_model("hub", "SearchWord")
    words = set()
    for name, description, text in Adapter.objects.filter(private=False).values_list(
        "name", "description", "search_text"
    ).iterator(chunk_size=2000):
        words |= adapter_words(name, description, text)
    SearchWord.objects.bulk_create(
        [SearchWord(word=w) for w in words], batch_size=5000, ignore_conflicts=True
    )
