"""The event-file loader against real event files and a real DuckDB file."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import duckdb
import orjson
import pytest

from growth_stack_dagster.capture import loader
from tests.capture.payloads import (DAY1, DAY2, WEB_CONTEXT, customerio_body, envelope, stamp,
                                    stripe_invoice_paid, write)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "events"


@pytest.fixture
def con(tmp_path: Path):
    c = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield c
    c.close()


def rows(con, sql: str, *params) -> list[dict]:
    cur = con.execute(sql, list(params))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def one_of_each_type(day: str) -> list[dict]:
    return [
        stamp({"type": "page", "messageId": "m-page", "anonymousId": "anon-1", "name": "Tee", "category": "Products",
               "properties": {"path": "/products/tee", "url": "https://shop.example.com/products/tee",
                              "title": "Tee", "referrer": "https://www.google.com/", "search": ""},
               "context": WEB_CONTEXT}, day, 1),
        stamp({"type": "track", "messageId": "m-track", "anonymousId": "anon-1", "userId": "user-1",
               "event": "Order Completed",
               "properties": {"order_id": "o-1", "total": 27.5, "revenue": 25.0, "currency": "USD",
                              "coupon": "BF10", "products": [{"product_id": "p1", "sku": "S1", "price": 25.0,
                                                              "quantity": 1}],
                              "shippingMethod": {"carrierName": "UPS", "days": 2}},
               "context": WEB_CONTEXT}, day, 2),
        stamp({"type": "identify", "messageId": "m-identify", "anonymousId": "anon-1", "userId": "user-1",
               "traits": {"email": "ada@example.com", "firstName": "Ada", "age": 36,
                          "address": {"city": "Paris", "country": "FR"}},
               "context": WEB_CONTEXT}, day, 3),
        stamp({"type": "screen", "messageId": "m-screen", "anonymousId": "ios-1", "name": "Cart",
               "properties": {"items": 2},
               "context": {"library": {"name": "analytics-ios", "version": "4.1.8"},
                           "device": {"manufacturer": "Apple", "model": "iPhone15,2"},
                           "os": {"name": "iOS", "version": "18.1"}, "app": {"version": "3.2.1"}}}, day, 4),
        stamp({"type": "group", "messageId": "m-group", "userId": "user-1", "groupId": "acct-9",
               "traits": {"name": "Wholesale Co", "employees": 120}}, day, 5),
        stamp({"type": "alias", "messageId": "m-alias", "userId": "user-1", "previousId": "anon-1"}, day, 6),
    ]


def test_every_message_type_lands_in_its_table_with_segment_names(root: Path, con) -> None:
    write(root, "web", DAY1, one_of_each_type(DAY1))
    report = loader.load_partition(con, root, DAY1)
    assert report.messages_read == 6 and report.discards == 0

    [page] = rows(con, "SELECT * FROM events.pages")
    assert page["id"] == "m-page" and page["anonymous_id"] == "anon-1" and page["source"] == "web"
    assert page["name"] == "Tee" and page["category"] == "Products"
    assert page["path"] == "/products/tee" and page["title"] == "Tee"
    assert page["context_page_url"] == WEB_CONTEXT["page"]["url"]
    assert page["context_campaign_source"] == "google" and page["context_campaign_medium"] == "cpc"
    assert page["context_user_agent"].startswith("Mozilla/5.0")
    assert page["context_library_name"] == "analytics.js"
    assert {"timestamp", "received_at", "sent_at", "original_timestamp", "uuid_ts"} <= page.keys()
    assert str(page["received_at"]).startswith(DAY1)

    [track] = rows(con, "SELECT * FROM events.tracks")
    assert track["event"] == "order_completed" and track["event_text"] == "Order Completed"
    assert "order_id" not in track  # custom properties live in the event table only
    [order] = rows(con, "SELECT * FROM events.order_completed")
    assert order["id"] == "m-track" and order["user_id"] == "user-1"
    assert order["order_id"] == "o-1" and order["total"] == 27.5 and order["coupon"] == "BF10"
    assert order["shipping_method_carrier_name"] == "UPS" and order["shipping_method_days"] == 2
    assert json.loads(order["products"]) == [{"product_id": "p1", "sku": "S1", "price": 25.0, "quantity": 1}]
    assert order["context_campaign_name"] == "black_friday"

    [ident] = rows(con, "SELECT * FROM events.identifies")
    assert ident["email"] == "ada@example.com" and ident["first_name"] == "Ada" and ident["age"] == 36
    assert ident["address_city"] == "Paris"
    [screen] = rows(con, "SELECT * FROM events.screens")
    assert screen["name"] == "Cart" and screen["items"] == 2 and screen["context_device_model"] == "iPhone15,2"
    assert screen["context_os_name"] == "iOS" and screen["context_app_version"] == "3.2.1"
    [group] = rows(con, "SELECT * FROM events.groups")
    assert group["group_id"] == "acct-9" and group["name"] == "Wholesale Co" and group["employees"] == 120
    [alias] = rows(con, "SELECT * FROM events.aliases")
    assert alias["previous_id"] == "anon-1" and alias["user_id"] == "user-1"
    [user] = rows(con, "SELECT * FROM events.users")
    assert user["id"] == "user-1" and user["email"] == "ada@example.com" and user["first_name"] == "Ada"
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_schema='events' AND table_name='order_completed'").fetchall())
    assert types["total"] == "DOUBLE" and types["products"] == "JSON" and types["timestamp"].startswith("TIMESTAMP")


def test_users_keep_the_latest_non_null_trait(root: Path, con) -> None:
    write(root, "web", DAY1, [
        stamp({"type": "identify", "userId": "u1", "traits": {"plan": "free", "email": "a@example.com"}}, DAY1, 1),
        stamp({"type": "identify", "userId": "u1", "traits": {"plan": "pro"}}, DAY1, 9),
    ])
    loader.load_partition(con, root, DAY1)
    assert rows(con, "SELECT id, plan, email FROM events.users") == [{"id": "u1", "plan": "pro",
                                                                      "email": "a@example.com"}]


def test_duplicates_are_dropped_within_and_across_days(root: Path, con) -> None:
    msg = stamp({"type": "track", "messageId": "dup-1", "userId": "u1", "event": "Product Viewed",
                 "properties": {"product_id": "p1"}}, DAY1, 1)
    write(root, "web", DAY1, [msg, msg, stamp({"type": "page", "messageId": "p-1", "anonymousId": "a"}, DAY1)])
    write(root, "web", DAY1, [msg])
    r1 = loader.load_partition(con, root, DAY1)
    assert r1.duplicates_in_day == 2 and r1.duplicates_across_days == 0
    assert r1.rows_per_table["product_viewed"] == 1
    # The same message re-sent, received the next day: dropped and counted.
    write(root, "web", DAY2, [dict(msg, receivedAt=f"{DAY2}T00:00:05.000Z"),
                              stamp({"type": "track", "messageId": "new-2", "userId": "u1",
                                     "event": "Product Viewed", "properties": {"product_id": "p2"}}, DAY2)])
    r2 = loader.load_partition(con, root, DAY2)
    assert r2.duplicates_across_days == 1 and r2.duplicates_dropped == 1
    assert con.execute("SELECT count(*), count(DISTINCT id) FROM events.product_viewed").fetchone() == (2, 2)
    assert con.execute("SELECT count(*) FROM events.tracks").fetchone() == (2,)


def snapshot(con) -> dict[str, list]:
    out = {}
    for (table,) in con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema='events' "
                                "ORDER BY 1").fetchall():
        cols = [c for (c,) in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema='events' AND table_name=? "
            "AND column_name NOT IN ('uuid_ts', 'discarded_at', 'loaded_at') ORDER BY 1", [table]).fetchall()]
        sel = ", ".join(f'CAST("{c}" AS VARCHAR)' for c in cols)
        out[table] = sorted(con.execute(f'SELECT {sel} FROM events."{table}"').fetchall(), key=repr)
    return out


def test_rerunning_a_partition_produces_the_same_tables(root: Path, con) -> None:
    write(root, "web", DAY1, one_of_each_type(DAY1) + [b'{"type":"track","messageId":"torn"'])
    write(root, "stripe", DAY1, [envelope(stripe_invoice_paid(), DAY1)])
    write(root, "web", DAY2, [stamp({"type": "page", "messageId": "d2", "anonymousId": "a"}, DAY2)])
    loader.load_partition(con, root, DAY1)
    loader.load_partition(con, root, DAY2)
    first = snapshot(con)
    again = loader.load_partition(con, root, DAY1)
    assert again.duplicates_dropped == 0 and again.discards == 1
    assert snapshot(con) == first
    assert con.execute("SELECT count(*) FROM events.pages").fetchone() == (2,)


def test_type_conflicts_go_to_discards_and_never_fail_the_load(root: Path, con) -> None:
    write(root, "web", DAY1, [stamp({"type": "track", "messageId": "t1", "userId": "u", "event": "Order Completed",
                                     "properties": {"order_id": "o1", "total": 10.5, "items": 2}}, DAY1)])
    loader.load_partition(con, root, DAY1)
    bad = stamp({"type": "track", "messageId": "t2", "userId": "u", "event": "Order Completed",
                 "properties": {"order_id": "o2", "total": "abc", "items": 1.5, "note": "new column"}}, DAY2)
    path = write(root, "web", DAY2, [bad, stamp({"type": "track", "messageId": "t3", "userId": "u",
                                                 "event": "Order Completed",
                                                 "properties": {"order_id": "o3", "total": "12.25",
                                                                "items": 3}}, DAY2)])
    report = loader.load_partition(con, root, DAY2)
    assert report.rows_per_table["order_completed"] == 2
    got = {r["id"]: r for r in rows(con, "SELECT id, total, items, note FROM events.order_completed")}
    assert got["t2"]["total"] is None and got["t2"]["items"] is None and got["t2"]["note"] == "new column"
    assert got["t3"]["total"] == 12.25 and got["t3"]["items"] == 3  # castable strings are stored
    discards = rows(con, 'SELECT "table", "column", value, reason, message_id, source_file, source '
                         'FROM events._discards ORDER BY "column"')
    assert [(d["table"], d["column"], d["value"], d["message_id"]) for d in discards] == [
        ("order_completed", "items", "1.5", "t2"), ("order_completed", "total", '"abc"', "t2")]
    assert discards[1]["reason"] == "value does not fit column type DOUBLE"
    assert discards[1]["source_file"] == str(path) and discards[1]["source"] == "web"


def test_spec_types_apply_to_a_new_column(root: Path, con) -> None:
    write(root, "web", DAY1, [stamp({"type": "track", "messageId": "a", "userId": "u", "event": "Order Completed",
                                     "properties": {"total": "abc"}}, DAY1),
                              stamp({"type": "track", "messageId": "b", "userId": "u", "event": "Order Completed",
                                     "properties": {"total": 3}}, DAY1)])
    report = loader.load_partition(con, root, DAY1)
    assert report.discards == 1
    assert rows(con, "SELECT id, total FROM events.order_completed ORDER BY id") == [
        {"id": "a", "total": None}, {"id": "b", "total": 3.0}]


def test_invalid_lines_go_to_discards_with_their_exact_text(root: Path, con) -> None:
    good = one_of_each_type(DAY1)
    torn = b'{"type":"track","messageId":"torn-1","event":"Product Vie'
    path = write(root, "web", DAY1, [good[0], torn, good[1], b'[1, 2]', b'{"foo": 1}',
                                     orjson.dumps({"type": "track", "event": "No Id"})])
    report = loader.load_partition(con, root, DAY1)
    assert report.rows_per_table["pages"] == 1 and report.rows_per_table["order_completed"] == 1
    got = rows(con, "SELECT value, reason, source_file FROM events._discards ORDER BY reason, value")
    by_value = {g["value"]: g["reason"] for g in got}
    assert by_value[torn.decode()].startswith("invalid JSON line")
    assert by_value["[1, 2]"] == "line is not a JSON object"
    assert by_value['{"foo": 1}'] == "message has neither type nor messageId"
    assert by_value['{"type":"track","event":"No Id"}'] == "message has no messageId"
    assert all(g["source_file"] == str(path) for g in got)
    assert report.discards == 4


def test_messages_that_cannot_be_loaded_are_kept_as_their_exact_line(root: Path, con) -> None:
    lines = [b'{"type": "track", "messageId": "m1", "userId": 5, "integrations": {"All": false}, "channel": "web"}',
             b'{"type":"purchase","messageId":"m2","properties":{"total":1.50}}',
             b'{"messageId":"m3","type":"webhook","body":"{}"}',
             orjson.dumps(stamp({"type": "track", "messageId": "ok", "userId": "u", "event": "E"}, DAY1))]
    path = write(root, "web", DAY1, lines)
    report = loader.load_partition(con, root, DAY1)
    assert report.rows_per_table["e"] == 1 and report.messages_read == 4
    assert rows(con, "SELECT message_id, value, reason, source_file FROM events._discards ORDER BY message_id") == [
        {"message_id": "m1", "value": lines[0].decode(), "reason": "track without event", "source_file": str(path)},
        {"message_id": "m2", "value": lines[1].decode(), "reason": "unknown message type", "source_file": str(path)},
        {"message_id": "m3", "value": lines[2].decode(), "reason": "webhook envelope in an event-source file",
         "source_file": str(path)}]


def test_each_line_of_a_file_with_unreadable_lines_is_loaded_or_discarded_once(root: Path, con) -> None:
    # read_json and the Python reader disagree on e.g. 1e400; in a file Python cleans, Python decides.
    big = b'{"type":"track","event":"E","messageId":"big","userId":"u","properties":{"x":1e400}}'
    write(root, "web", DAY1, [b"[1, 2]", big, orjson.dumps(stamp(
        {"type": "track", "messageId": "ok", "userId": "u", "event": "E"}, DAY1))])
    report = loader.load_partition(con, root, DAY1)
    loaded = [r["id"] for r in rows(con, "SELECT id FROM events.tracks")]
    discarded = [r["value"] for r in rows(con, "SELECT value FROM events._discards")]
    assert loaded == ["ok"] and sorted(discarded) == sorted(["[1, 2]", big.decode()])
    assert report.discards == 2


def test_a_file_read_json_refuses_is_cleaned_in_python(root: Path, con, monkeypatch) -> None:
    write(root, "web", DAY1, one_of_each_type(DAY1) + [b"not json"])

    def refuse(con, paths):
        raise duckdb.InvalidInputException("refused")

    monkeypatch.setattr(loader, "_read_event_files", refuse)
    report = loader.load_partition(con, root, DAY1)
    assert report.messages_read == 6 and report.discards_by_reason == {"invalid JSON line": 1}
    assert rows(con, "SELECT id, total FROM events.order_completed") == [{"id": "m-track", "total": 27.5}]


def test_webhooks_are_transformed_at_load_and_failures_kept(root: Path, con) -> None:
    env = envelope(customerio_body("clicked", "01JCLICK", href="https://shop.example.com/x", link_id=4), DAY1)
    write(root, "customerio", DAY1, [
        env, dict(env, messageId="redelivery"),  # redelivered: same event_id -> one event
        envelope(customerio_body("opened", "01JOPEN"), DAY1),
        envelope({"metric": "opened", "data": {"customer_id": "u"}}, DAY1),  # no event_id
    ])
    write(root, "stripe", DAY1, [envelope(stripe_invoice_paid(), DAY1), envelope("{not json", DAY1)])
    report = loader.load_partition(con, root, DAY1)
    assert report.duplicates_in_day == 1
    [click] = rows(con, "SELECT * FROM events.email_clicked")
    assert click["id"] == "customerio-01JCLICK" and click["user_id"] == "user-42" and click["source"] == "customerio"
    assert click["link_url"] == "https://shop.example.com/x" and click["context_traits_email"] == "ada@example.com"
    assert rows(con, "SELECT id FROM events.email_opened") == [{"id": "customerio-01JOPEN"}]
    [order] = rows(con, "SELECT * FROM events.order_completed")
    assert order["order_id"] == "in_1QabcDEF" and order["total"] == 49.5 and order["source"] == "stripe"
    assert order["stripe_customer_id"] == "cus_Rabc123" and order["context_traits_email"] == "buyer@example.com"
    assert [p["sku"] for p in json.loads(order["products"])] == ["TEE-BLK-M", "prod_cap"]
    failures = rows(con, "SELECT source, value, reason FROM events._discards ORDER BY source")
    assert [(f["source"], f["reason"].split(":")[0]) for f in failures] == [
        ("customerio", "webhook transform failed"), ("stripe", "webhook transform failed")]
    assert "event_id" in failures[0]["reason"] and failures[1]["value"] == "{not json"


def test_reserved_names_and_schema_evolution(root: Path, con) -> None:
    write(root, "web", DAY1, [stamp({"type": "track", "messageId": "r1", "userId": "u1", "event": "Signed Up",
                                     "properties": {"user_id": "someone-else", "id": "r1", "plan": "pro"}}, DAY1)])
    loader.load_partition(con, root, DAY1)
    [row] = rows(con, "SELECT * FROM events.signed_up")
    assert row["user_id"] == "u1" and row["plan"] == "pro"
    [d] = rows(con, 'SELECT "column", value, reason FROM events._discards')
    assert d["column"] == "user_id" and d["value"] == '"someone-else"' and d["reason"].startswith("reserved")
    write(root, "web", DAY2, [stamp({"type": "track", "messageId": "r2", "userId": "u2", "event": "Signed Up",
                                     "properties": {"plan": "free", "referral_code": "FRIEND"}}, DAY2)])
    report = loader.load_partition(con, root, DAY2)
    assert "signed_up.referral_code" in report.new_columns
    assert rows(con, "SELECT id, referral_code FROM events.signed_up ORDER BY id") == [
        {"id": "r1", "referral_code": None}, {"id": "r2", "referral_code": "FRIEND"}]


def test_event_table_names() -> None:
    assert loader.snake_case("Order Completed") == "order_completed"
    assert loader.snake_case("userAgent") == "user_agent"
    assert loader.snake_case("Request a Quote") == "request_a_quote"
    assert loader.snake_case("HTMLParser Ready") == "html_parser_ready"
    assert loader.event_table_name("Users") == "event_users"
    assert loader.event_table_name("2FA Enabled") == "event_2_fa_enabled"
    assert loader.event_table_name("!!!") == "unnamed_event"


def test_names_outside_ascii_keep_what_tells_them_apart() -> None:
    """Accents and compatibility forms fold as Segment folds case (`Café` -> `cafe`); letters of other
    scripts become code points, so that different names never share a column or a table."""
    assert loader.snake_case("Größe") == "grosse"
    assert loader.snake_case("ÉtatCivil") == "etat_civil"
    assert loader.snake_case("Ｆｕｌｌ Ｎａｍｅ") == "full_name"
    assert loader.snake_case("名前") == "u540d_u524d"
    assert loader.snake_case("Имя") == loader.snake_case("имя") == "u0438_u043c_u044f"  # case folds
    assert loader.snake_case("プラン") != loader.snake_case("フラン")  # kana marks are not accents
    assert loader.event_table_name("注文完了") == "u6ce8_u6587_u5b8c_u4e86"
    assert loader.event_table_name("🎉") == "unnamed_event"


def test_events_and_keys_in_other_scripts_load_into_tables_and_columns_of_their_own(root: Path, con) -> None:
    """Two Japanese events get a table each, and their Japanese keys a column each: nothing is folded
    together or discarded; keys that differ only in case (`Имя`, `имя`) still fold into one column."""
    write(root, "web", DAY1, [
        stamp({"type": "track", "event": "注文完了", "messageId": "j1", "userId": "u",
               "properties": {"名前": "ann", "価格": 10, "Größe": "L"}}, DAY1),
        stamp({"type": "track", "event": "カート追加", "messageId": "j2", "userId": "u",
               "properties": {"名前": "bob"}}, DAY1),
        stamp({"type": "identify", "messageId": "j3", "userId": "u", "traits": {"Имя": None, "имя": "Anna"}}, DAY1)])
    loader.load_partition(con, root, DAY1)
    assert rows(con, "SELECT id, event, event_text, u540d_u524d, u4fa1_u683c, grosse "
                     "FROM events.u6ce8_u6587_u5b8c_u4e86") == [
        {"id": "j1", "event": "u6ce8_u6587_u5b8c_u4e86", "event_text": "注文完了", "u540d_u524d": "ann",
         "u4fa1_u683c": 10, "grosse": "L"}]
    assert rows(con, "SELECT id, u540d_u524d FROM events.u30ab_u30fc_u30c8_u8ffd_u52a0") == [
        {"id": "j2", "u540d_u524d": "bob"}]
    assert rows(con, "SELECT id, u0438_u043c_u044f FROM events.identifies") == [{"id": "j3", "u0438_u043c_u044f": "Anna"}]
    assert rows(con, "SELECT count(*) AS n FROM events._discards") == [{"n": 0}]


def test_empty_day_loads_nothing_and_succeeds(root: Path, con) -> None:
    report = loader.load_partition(con, root, DAY1)
    assert report.files == 0 and report.rows_per_table == {"users": 0}
    with pytest.raises(ValueError):
        loader.load_partition(con, root, "2026-13-01")


def test_an_unparseable_timestamp_is_kept_in_discards_and_the_row_loaded(root: Path, con) -> None:
    write(root, "server", DAY1, [
        stamp({"type": "track", "messageId": "ts-ok", "userId": 1234, "event": "Request a Quote",
               "properties": {"quote_value": 1200}}, DAY1),
        stamp({"type": "track", "messageId": "ts-bad", "userId": "u2", "event": "Request a Quote",
               "timestamp": "yesterday-ish", "properties": {}}, DAY1),
    ])
    loader.load_partition(con, root, DAY1)
    got = {r["id"]: r for r in rows(con, "SELECT id, user_id, timestamp, source FROM events.request_a_quote")}
    assert got["ts-bad"]["timestamp"] is None and got["ts-ok"]["timestamp"] is not None
    assert got["ts-ok"]["user_id"] == "1234" and got["ts-ok"]["source"] == "server"
    [d] = rows(con, 'SELECT "table", "column", value, message_id FROM events._discards '
                    'WHERE "table" = \'request_a_quote\'')
    assert d == {"table": "request_a_quote", "column": "timestamp", "value": '"yesterday-ish"', "message_id": "ts-bad"}


def test_a_key_repeated_in_an_object_loads_its_first_value(root: Path, con) -> None:
    # JSON leaves repeated keys to the reader: DuckDB keeps the first (the collector's orjson the last,
    # so its files never repeat a key). Keys differing only in case: see the folding tests below.
    write(root, "web", DAY1, [
        b'{"type":"track","event":"E","messageId":"m1","userId":"u","properties":{"a":1,"a":2}}',
        orjson.dumps(stamp({"type": "track", "event": "E", "messageId": "m2", "userId": "u",
                            "properties": {"a": 5, "list": [1, "x"]}}, DAY1))])
    report = loader.load_partition(con, root, DAY1)
    assert report.rows_per_table["e"] == 2 and report.discards == 0
    assert rows(con, "SELECT id, a, list FROM events.e ORDER BY id") == [
        {"id": "m1", "a": 1, "list": None}, {"id": "m2", "a": 5, "list": '[1,"x"]'}]


def test_dropped_duplicates_and_invalid_messages_do_not_type_columns(root: Path, con) -> None:
    first = stamp({"type": "track", "event": "E", "messageId": "m1", "userId": "u", "properties": {"b": 1}}, DAY1, 1)
    later = stamp({"type": "track", "event": "E", "messageId": "m1", "userId": "u", "properties": {"b": "y"}}, DAY1, 2)
    invalid = {"type": "track", "messageId": "m2", "userId": "u", "properties": {"b": "z"}}  # no event
    write(root, "web", DAY1, [first, later, invalid])
    report = loader.load_partition(con, root, DAY1)
    assert report.duplicates_in_day == 1 and report.rows_per_table["e"] == 1
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_schema = 'events' AND table_name = 'e'").fetchall())
    assert types["b"] == "BIGINT"


def test_properties_that_are_not_an_object_are_kept_in_discards(root: Path, con) -> None:
    write(root, "web", DAY1, [
        stamp({"type": "track", "messageId": "ok", "userId": "u", "event": "Product Added",
               "properties": {"sku": "S1", "price": 9.5}}, DAY1),
        stamp({"type": "track", "messageId": "odd", "userId": "u", "event": "Product Added",
               "properties": "S2"}, DAY1),
    ])
    report = loader.load_partition(con, root, DAY1)
    assert report.rows_per_table["product_added"] == 2
    assert rows(con, "SELECT id, sku, price FROM events.product_added ORDER BY id") == [
        {"id": "odd", "sku": None, "price": None}, {"id": "ok", "sku": "S1", "price": 9.5}]
    [d] = rows(con, "SELECT message_id, value, reason FROM events._discards")
    assert d == {"message_id": "odd", "value": '"S2"', "reason": "properties is not a JSON object"}


def test_keys_differing_only_in_case_fold_into_one_column(root: Path, con) -> None:
    # DuckDB's read_json merges `Plan` into `plan`'s struct field and reads only one spelling
    # (duckdb/duckdb#23143): both spellings must still land in the one column Segment names `plan`.
    write(root, "web", DAY1, [
        stamp({"type": "track", "messageId": "a", "userId": "u", "event": "Signed Up",
               "properties": {"Plan": "pro", "Seats": {"Count": 3}}}, DAY1, 1),
        stamp({"type": "track", "messageId": "b", "userId": "u", "event": "Signed Up",
               "properties": {"plan": "free", "seats": {"count": 4}}}, DAY1, 2),
        stamp({"type": "track", "messageId": "c", "userId": "u", "event": "Signed Up",
               "properties": {"PLAN": "team", "seats": {"Count": 5}}}, DAY1, 3),
    ])
    report = loader.load_partition(con, root, DAY1)
    assert report.discards == 0
    assert rows(con, "SELECT id, plan, seats_count FROM events.signed_up ORDER BY id") == [
        {"id": "a", "plan": "pro", "seats_count": 3}, {"id": "b", "plan": "free", "seats_count": 4},
        {"id": "c", "plan": "team", "seats_count": 5}]


def test_keys_folded_into_one_column_keep_the_last_value_of_the_message(root: Path, con) -> None:
    # One message holding several keys of one column: the last non-null one in the message wins,
    # every other value is in _discards with the reason.
    write(root, "web", DAY1, [
        b'{"type":"identify","messageId":"m1","userId":"u","receivedAt":"2026-11-20T10:00:00Z",'
        b'"traits":{"plan":"free","Plan":"pro","firstName":"Ada","first_name":null}}',
        b'{"type":"identify","messageId":"m2","userId":"v","receivedAt":"2026-11-20T10:00:01Z",'
        b'"traits":{"Plan":"pro","plan":"free","first_name":"Bo","firstName":"Bob","address":{"City":"Rome"},'
        b'"Address":{"city":"Oslo"}}}',
        b'{"type":"identify","messageId":"m3","userId":"w","receivedAt":"2026-11-20T10:00:02Z",'
        b'"traits":{"userAgent":"X","user_agent":"Y","PLAN":"team","plan":null}}',
    ])
    report = loader.load_partition(con, root, DAY1)
    assert rows(con, "SELECT id, plan, first_name, address_city, user_agent FROM events.identifies ORDER BY id") == [
        {"id": "m1", "plan": "pro", "first_name": "Ada", "address_city": None, "user_agent": None},
        {"id": "m2", "plan": "free", "first_name": "Bob", "address_city": "Oslo", "user_agent": None},
        {"id": "m3", "plan": "team", "first_name": None, "address_city": None, "user_agent": "Y"}]
    got = rows(con, 'SELECT message_id, "column", value, reason FROM events._discards ORDER BY ALL')
    assert [(d["message_id"], d["column"], d["value"]) for d in got] == [
        ("m1", "plan", '"free"'), ("m2", "address_city", '"Rome"'), ("m2", "first_name", '"Bo"'),
        ("m2", "plan", '"pro"'), ("m3", "user_agent", '"X"')]
    assert got[0]["reason"] == ("key folded into a column that kept a later value of the message: plan "
                                "(folded with PLAN, Plan into plan)")
    assert report.discards == 5


def test_files_with_differing_shapes_are_merged_like_one_read(root: Path, con) -> None:
    # Each file is inferred on its own: the merge must type every value as one read_json would.
    web = write(root, "web", DAY1, [stamp({"type": "track", "messageId": f"w{i}", "userId": "u", "event": "Thing",
                                           "properties": {"n": i, "id_like": str(uuid.UUID(int=i)), "day": "2026-11-20",
                                                          "flag": True, "note": None}}, DAY1, i) for i in range(3)])
    write(root, "ios", DAY1, [stamp({"type": "track", "messageId": str(uuid.UUID(int=99)), "anonymousId": "a",
                                     "event": "Thing", "properties": {"n": 2.5, "id_like": 7, "day": "soon",
                                                                      "only_here": {"deep": {"er": "x"}}}}, DAY1, 9)])
    report = loader.load_partition(con, root, DAY1)
    assert report.rows_per_table["thing"] == 4 and report.discards == 0
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_schema='events' AND table_name='thing'").fetchall())
    # number + number -> DOUBLE, uuid text + number -> JSON, date text + other text -> VARCHAR
    assert types["n"] == "DOUBLE" and types["id_like"] == "JSON" and types["day"] == "VARCHAR"
    assert types["flag"] == "BOOLEAN" and types["only_here_deep_er"] == "VARCHAR" and "note" not in types
    got = {r["id"]: r for r in rows(con, "SELECT id, n, id_like, day, only_here_deep_er FROM events.thing")}
    assert got["w1"]["n"] == 1.0 and json.loads(got["w1"]["id_like"]) == str(uuid.UUID(int=1))
    assert got["w1"]["day"] == "2026-11-20" and got[str(uuid.UUID(int=99))]["only_here_deep_er"] == "x"
    assert json.loads(got[str(uuid.UUID(int=99))]["id_like"]) == 7
    assert rows(con, "SELECT DISTINCT source FROM events.thing ORDER BY 1") == [{"source": "ios"}, {"source": "web"}]
    assert web.exists()


def test_dates_keep_their_type_and_other_date_forms_are_kept_as_text(root: Path, con) -> None:
    write(root, "web", DAY1, [stamp({"type": "track", "messageId": f"d{i}", "userId": "u", "event": "Booked",
                                     "properties": {"starts": "2026-12-01", "ends_at": "2026-12-02T10:00:00Z",
                                                    "local_day": "12-01-2026"}}, DAY1, i) for i in range(2)])
    report = loader.load_partition(con, root, DAY1)
    assert report.discards == 0
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_schema='events' AND table_name='booked'").fetchall())
    assert types["starts"] == "DATE" and types["ends_at"].startswith("TIMESTAMP")
    # read_json infers 12-01-2026 as a DATE too, but only text keeps it exactly as sent
    assert types["local_day"] == "VARCHAR"
    [row] = rows(con, "SELECT starts, local_day FROM events.booked WHERE id = 'd0'")
    assert str(row["starts"]) == "2026-12-01" and row["local_day"] == "12-01-2026"


def test_bags_are_typed_as_one_read_json_over_every_message_types_them(tmp_path: Path) -> None:
    """The loader infers each bag over its distinct values: the types must be what one read_json over
    all the files infers, for clashing kinds, dates, nesting and lists."""
    shapes = [
        [{"type": "track", "event": "E", "messageId": f"w{i}", "properties": {
            "n": i, "id_like": str(uuid.UUID(int=i)), "day": "2026-11-20", "flag": True, "note": None, "list": [1, 2]}}
         for i in range(3)],
        [{"type": "page", "messageId": "x", "anonymousId": "a", "context": {"Plan": 1},
          "properties": {"n": 2.5, "id_like": 7, "day": "soon", "only_here": {"deep": {"er": "x"}}, "list": ["a"]}}],
        [{"type": "identify", "messageId": "y", "traits": {"n": "text", "flag": False, "ts": "2026-11-20T10:00:00Z",
                                                            "when": "2026-11-21"}}],
    ]
    files = []
    for i, messages in enumerate(shapes):
        f = tmp_path / "source=web" / "date=x" / f"{i}.jsonl"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("".join(json.dumps(m) + "\n" for m in messages))
        files.append(str(f))
    con = duckdb.connect()
    loader._read_event_files(con, files)
    bags = loader._type_bags(con, loader._Prepared(read_paths=[], original_of={}, discards=[]), tmp_path)
    one_read = {name: loader._type_tree(con.type(t)) for name, t, *_ in con.execute(
        f"DESCRIBE SELECT * FROM read_json({[*files]!r}, format='newline_delimited', records=true, union_by_name=true, "
        "sample_size=-1, field_appearance_threshold=0, map_inference_threshold=-1)").fetchall()}
    expected = {(bag, *path): t for bag in loader.BAGS for path, t in loader.inferred_scalars(one_read[bag]).items()}
    assert bags.inferred == expected
    assert expected[("properties", "day")] == "VARCHAR" and expected[("traits", "when")] == "DATE"
    # lists are kept as JSON text as sent (typed, objects in them would lose keys differing in case)
    assert bags.structures["properties"]["list"] == "JSON" and bags.structures["context"] == {"Plan": "BIGINT"}


def test_bags_are_read_as_text_dates_and_json_where_kinds_clash() -> None:
    when, null = ("scalar", "DATE"), ("scalar", '"NULL"')
    tree = ("struct", (("day", when), ("id", ("scalar", "UUID")), ("n", null), ("x", ("scalar", "BIGINT")),
                       ("l", ("list", ("struct", (("a", ("scalar", "DOUBLE")),)))), ("e", ("struct", ()))))
    assert loader.transform_structure(tree) == {"day": "VARCHAR", "id": "VARCHAR", "n": "JSON", "x": "BIGINT",
                                                "l": "JSON", "e": "JSON"}


def test_classify_line_names_why_a_line_cannot_be_loaded() -> None:
    assert loader._classify_line(b'{"type": "track"}') == ({"type": "track"}, None)
    assert loader._classify_line(b'{"type": "tr')[1].startswith("invalid JSON line")
    assert loader._classify_line(b"[1, 2]") == (None, "line is not a JSON object")
    assert loader._classify_line(b'{"foo": 1}') == (None, "message has neither type nor messageId")


def test_keys_with_an_empty_name_are_kept_in_discards_and_the_rest_loaded(root: Path, con) -> None:
    # A top-level field outside the message fields is not loaded, whatever its name (the collector
    # refuses one without a name: tests/collector/test_bad_input.py); inside properties it is kept.
    write(root, "web", DAY1, [stamp({"type": "track", "messageId": "k1", "userId": "u", "event": "Keys", "": "top",
                                     "properties": {"": "empty", "a": 1, "n": {"": 2, "b": 3}, "l": [{"": 1}]}},
                                    DAY1, 1)])
    report = loader.load_partition(con, root, DAY1)
    assert report.rows_per_table["keys"] == 1
    assert rows(con, "SELECT a, n_b, l FROM events.keys") == [{"a": 1, "n_b": 3, "l": '[{"":1}]'}]
    assert rows(con, "SELECT value, reason FROM events._discards ORDER BY value") == [
        {"value": '"empty"', "reason": "properties key with an empty name (at JSON pointer /)"},
        {"value": "2", "reason": "properties key with an empty name (at JSON pointer /n/)"}]


def test_a_key_with_an_empty_name_next_to_keys_differing_in_case_does_not_fail_the_load(root: Path, con) -> None:
    write(root, "web", DAY1, [
        orjson.dumps(stamp({"type": "track", "messageId": "k1", "userId": "u", "event": "Keys",
                            "properties": {"": 1, "a": 1}}, DAY1, 1)),
        orjson.dumps(stamp({"type": "track", "messageId": "k2", "userId": "u", "event": "Keys",
                            "properties": {"A": 2, "b": "x"}}, DAY1, 2))])
    report = loader.load_partition(con, root, DAY1)
    assert report.rows_per_table["keys"] == 2
    assert rows(con, "SELECT id, b FROM events.keys ORDER BY id") == [{"id": "k1", "b": None}, {"id": "k2", "b": "x"}]
    assert report.discards_by_reason == {"properties key with an empty name (at JSON pointer /)": 1}


def test_a_file_of_only_non_object_lines_is_discarded_and_the_others_loaded(root: Path, con) -> None:
    write(root, "web", DAY1, [b"[1, 2]", b'"just a string"'])
    write(root, "ios", DAY1, [stamp({"type": "page", "messageId": "p1", "anonymousId": "a"}, DAY1)])
    report = loader.load_partition(con, root, DAY1)
    assert report.rows_per_table["pages"] == 1
    assert report.discards_by_reason == {"line is not a JSON object": 2}


def test_an_object_holding_only_a_key_with_an_empty_name_loads(root: Path, con) -> None:
    # Found by the property sweep: the object left empty once its "" key is set aside failed the day.
    write(root, "web", DAY1, [stamp({"type": "page", "messageId": "p1", "userId": "u",
                                     "context": {"plan": {"": 3}, "": 4, "ip": "1.2.3.4"}}, DAY1)])
    report = loader.load_partition(con, root, DAY1)
    assert rows(con, "SELECT id, context_ip FROM events.pages") == [{"id": "p1", "context_ip": "1.2.3.4"}]
    assert rows(con, "SELECT value, reason FROM events._discards ORDER BY value") == [
        {"value": "3", "reason": "context key with an empty name (at JSON pointer /plan/)"},
        {"value": "4", "reason": "context key with an empty name (at JSON pointer /)"}]
    assert report.discards == 2


def test_identify_traits_sent_in_context_traits_are_its_traits(root: Path, con) -> None:
    # RudderStack's JavaScript SDK sends identify traits in context.traits only.
    write(root, "web", DAY1, [
        stamp({"type": "identify", "messageId": "r1", "userId": "u1",
               "context": {"traits": {"email": "a@example.com", "plan": "pro"}}}, DAY1, 1),
        stamp({"type": "identify", "messageId": "r2", "userId": "u2", "traits": {"email": "top@example.com"},
               "context": {"traits": {"email": "ctx@example.com", "age": 40}}}, DAY1, 2),
        stamp({"type": "track", "event": "E", "messageId": "t1", "userId": "u1",
               "context": {"traits": {"email": "t@example.com"}}}, DAY1, 3)])
    report = loader.load_partition(con, root, DAY1)
    assert report.discards == 0
    assert rows(con, "SELECT id, email, plan, age, context_traits_email FROM events.identifies ORDER BY id") == [
        {"id": "r1", "email": "a@example.com", "plan": "pro", "age": None, "context_traits_email": "a@example.com"},
        {"id": "r2", "email": "top@example.com", "plan": None, "age": 40, "context_traits_email": "ctx@example.com"}]
    assert rows(con, "SELECT id, email FROM events.users ORDER BY id") == [
        {"id": "u1", "email": "a@example.com"}, {"id": "u2", "email": "top@example.com"}]
    assert "email" not in loader.table_columns(con, "e")  # only identifies take context.traits as traits
