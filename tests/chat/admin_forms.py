"""The app admin's change-form POST data, as a browser sends it (the app's fields and its two
inlines' management forms), for the admin tests."""


def app_form(app_fields: dict, *, links=(), existing=(), settings: dict | None = None, **overrides) -> dict:
    """The app change form's POST data: the app's fields, its dataset rows (new ``links``,
    ``existing`` AppDataset rows kept) and the settings inline (left empty when None);
    ``overrides`` replace app fields (e.g. model="…")."""
    data = {
        "team": app_fields["team"], "name": app_fields["name"], "intro": "", "avatar": "", "model": "",
        "system_prompt": "", "temperature": "0.7", "max_tokens": "2000", "history_turns": "6", "welcome_text": "",
        **overrides,
    }
    rows = [{"id": str(row.pk), "dataset": row.dataset_id, "app": app_fields.get("pk", "")} for row in existing]
    rows += [{"dataset": dataset.pk, "app": app_fields.get("pk", "")} for dataset in links]
    data.update({
        "dataset_links-TOTAL_FORMS": str(len(rows)), "dataset_links-INITIAL_FORMS": str(len(existing)),
        "dataset_links-MIN_NUM_FORMS": "0", "dataset_links-MAX_NUM_FORMS": "1000",
    })
    for index, row in enumerate(rows):
        data.update({f"dataset_links-{index}-{key}": value for key, value in row.items()})
    data.update({
        "dataset_search-TOTAL_FORMS": "1" if settings is not None else "0", "dataset_search-INITIAL_FORMS": "0",
        "dataset_search-MIN_NUM_FORMS": "0", "dataset_search-MAX_NUM_FORMS": "1",
    })
    if settings is not None:
        defaults = {
            "search_mode": "mixedRecall", "similarity": "0.4", "limit": "3000", "top_k": "", "embedding_weight": "0.5",
            "rerank_model": "", "rerank_weight": "0.5", "extension_model": "", "extension_background": "",
            "quote_template": "", "quote_prompt": "", "app": app_fields.get("pk", ""),
        }
        data.update({f"dataset_search-0-{key}": value for key, value in {**defaults, **settings}.items()})
    return data
