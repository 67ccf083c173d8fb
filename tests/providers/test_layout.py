"""`providers` is the bottom of the model-calling stack: it imports only `config`, so both
`chat` and `datasets` can use it without a cycle; and its registry has one lookup."""

import ast
from pathlib import Path

import pytest

import providers
from providers.registry import BUILTIN_EMBEDDING, BUILTIN_LLM, UndeclaredModel, require_model

FORBIDDEN = ("chat", "datasets", "keys")


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_module_of_providers_imports_chat_datasets_or_keys():
    modules = sorted(Path(providers.__file__).parent.rglob("*.py"))
    assert len(modules) >= 5
    for module in modules:
        wrong = imported_packages(module) & set(FORBIDDEN)
        assert not wrong, f"{module.name} imports {wrong}"


def test_require_model_returns_a_declared_model_of_the_wanted_type(settings):
    settings.AI_MODELS, settings.AI_MODELS_FILE = "", ""
    assert require_model(BUILTIN_LLM, "llm").name == BUILTIN_LLM
    assert require_model(BUILTIN_EMBEDDING, "embedding").type == "embedding"


@pytest.mark.parametrize(
    "name, model_type", [("gpt-typo-model", "llm"), (BUILTIN_EMBEDDING, "llm"), (BUILTIN_LLM, "embedding")]
)
def test_require_model_refuses_an_undeclared_name_or_the_wrong_type(settings, name, model_type):
    settings.AI_MODELS, settings.AI_MODELS_FILE = "", ""
    with pytest.raises(UndeclaredModel) as raised:
        require_model(name, model_type)
    assert str(raised.value) == f"'{name}' is not a configured {model_type} model."
