"""A property-based fuzzer of chat-completion bodies (hypothesis; seeded and bounded), against
the in-process ASGI app with the built-in offline model, on whichever database the suite runs.

Whatever the body: never a 5xx; an error is the envelope with OpenAI's `error` object; a 200
stores the turn (a stream also ends with [DONE]). The wild text takes every code point, NUL and
lone surrogates included (refused with a 400 at the JSON input boundary, config/json_input.py);
the bodies meant to be valid leave those two out.
"""

from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat.models import ChatItem
from tests.chat.completion_calls import post

EXAMPLES = 300

text = st.text(st.characters(exclude_categories=()), max_size=30)  # NUL and surrogates too
scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | text
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
roles = st.sampled_from(["user", "assistant", "system", "tool", "function", "developer", "bot", ""]) | text
part = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": text | json_values}),
    st.fixed_dictionaries({"type": st.just("image_url"), "image_url": st.fixed_dictionaries({"url": text}) | text}),
    st.fixed_dictionaries({"type": st.just("file_url"), "url": text, "name": text}),
    st.dictionaries(text, json_values, max_size=3),
    json_values,
)
content = text | st.lists(part, max_size=4) | json_values
message = st.fixed_dictionaries(
    {"role": roles},
    optional={"content": content, "dataId": text | json_values, "name": text},
)
messages = st.lists(message, min_size=0, max_size=4) | json_values
optional_fields = {
    "chatId": text | json_values,
    "appId": text | json_values,
    "stream": st.booleans() | json_values,
    "detail": st.booleans() | json_values,
    "responseChatItemId": text | json_values,
    "variables": st.dictionaries(text, json_values, max_size=4) | json_values,
    "customUid": text | json_values,
    "metadata": st.dictionaries(text, json_values, max_size=4) | json_values,
    "stream_options": st.fixed_dictionaries({}, optional={"include_usage": st.booleans() | json_values}) | json_values,
    "model": text,
    "temperature": json_values,
}
wild_bodies = st.fixed_dictionaries({"messages": messages}, optional=optional_fields) | json_values

# Bodies a client means to be valid (unicode of every plane, every content shape and option),
# so the fuzzer also drives answers, streams and stored turns, not only refusals.
words = st.text(st.characters(blacklist_characters="\x00"), min_size=1, max_size=30).filter(str.strip)
non_finite = st.sampled_from([float("nan"), float("inf"), float("-inf")])  # not JSON: a 400
text_part = st.fixed_dictionaries({"type": st.just("text"), "text": words})
valid_part = text_part | st.fixed_dictionaries(
    {"type": st.just("image_url"), "image_url": st.fixed_dictionaries({"url": words})}
) | st.fixed_dictionaries({"type": st.just("file_url"), "url": words}, optional={"name": text})
history_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system"]), "content": words | st.lists(valid_part, min_size=1, max_size=3)}
)
question = st.fixed_dictionaries(
    {"role": st.just("user"), "content": words | st.lists(text_part, min_size=1, max_size=3)},
    optional={"dataId": st.text(min_size=1, max_size=20)},
)
valid_messages = st.builds(lambda history, last: [*history, last], st.lists(history_message, max_size=3), question)
valid_fields = {
    "chatId": st.none() | st.text(max_size=20),
    "stream": st.booleans(),
    "detail": st.booleans(),
    "responseChatItemId": st.none() | st.text(min_size=1, max_size=20),
    "variables": st.dictionaries(text, scalars | non_finite, max_size=4),
    "customUid": st.none() | text,
    "metadata": st.dictionaries(text, scalars | non_finite, max_size=4),
    "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
    "model": text,
    "temperature": scalars,
}
meant_valid = st.fixed_dictionaries({"messages": valid_messages}, optional=valid_fields)
bodies = meant_valid | wild_bodies
keys = st.sampled_from(["app", "global"])


def check(answer, *, body, stored_before: int):
    assert answer.status_code < 500, (body, answer.text)
    if answer.status_code != 200:
        error = answer.json()
        assert set(error) >= {"code", "statusText", "message", "data", "error"}, error
        assert error["error"]["message"] == error["message"]
        assert ChatItem.objects.count() == stored_before  # a refused request stores nothing
        return
    assert ChatItem.objects.count() == stored_before + 2, body  # the question and the answer
    if answer.headers["Content-Type"].startswith("text/event-stream"):
        events = answer.events()
        assert [data for _, data in events][-2:].count("[DONE]") == 1, answer.text
        assert "error" not in [name for name, _ in events]
    else:
        reply = answer.json()
        assert reply["object"] == "chat.completion"
        assert ChatItem.objects.filter(data_id=reply["responseChatItemId"], obj="AI").exists()


def test_any_body_is_answered_without_a_server_error(app_key, global_key):
    issued = {"app": app_key, "global": global_key}
    statuses = Counter()

    @settings(
        max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(body=bodies, key=keys)
    def run(body, key):
        stored_before = ChatItem.objects.count()
        answer = post(body, key=issued[key])
        statuses[answer.status_code] += 1
        check(answer, body=body, stored_before=stored_before)

    run()
    # The bodies drawn reach answers (streamed or not) as well as refusals.
    print(f"chat-body fuzzer: {EXAMPLES} bodies, answers by status {dict(statuses)}")
    assert statuses[200] >= EXAMPLES // 20 and statuses[400] >= EXAMPLES // 5, statuses


