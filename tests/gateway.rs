//! The gateway through its front door: the real server, real HTTP.

mod common;

use common::{integrations_with, json, read, request, workload, TestServer};
use serde_json::json;

const ACME: &[(&str, &str)] = &[
    // The third token is stored as a hash only: `acme-secret-3`.
    (
        "acme/tenant.yaml",
        "client_ids: [7, 8]\ntokens:\n  - acme-secret-1\n  - acme-secret-2\n  - sha256:c3b2b0046c2a5f36aaa6254719723469cbdd563bf72544fd02824d7da2eeec8c\n",
    ),
    ("acme/hello.yaml", "messages:\n  - text: \"Olá, {{ contact.name | first_name }}! {{ data.note }}\"\n"),
    ("acme/optional.yaml", "messages:\n  - text: sim\n    when: data.send\n"),
    ("acme/link.yaml", "messages:\n  - file: \"{{ data.url }}\"\n"),
    ("acme/echo.yaml", "messages:\n  - text: \"{{ data.t }}\"\n"),
    ("acme/tz.yaml", "messages:\n  - text: \"{{ TIMEZONE }}\"\n  - text: \"{{ data.n | default('sem valor', true) }}\"\n"),
    (
        "acme/tpl.yaml",
        "messages:\n  - template:\n      name: aviso\n      language: pt_BR\n      body: [\"{{ data.v }}\"]\n",
    ),
];

#[tokio::test]
async fn the_reference_workload_answers_its_expected_array() {
    let server = TestServer::start(&common::fixtures()).await;
    // The reference workload, byte for byte as the platform sends it.
    let (status, body) = server
        .post(
            "/hooks/boleto?token=demo-token",
            read(workload("request.json")),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json(workload("expected.json")));
    server.stop().await;
}

#[tokio::test]
async fn shipped_examples_answer_their_expected_arrays() {
    // The shipped demo tenant alone: other tenants an operator adds to
    // integrations/ do not matter here.
    let demo = common::shipped_demo();
    let server = TestServer::start(demo.path()).await;
    for name in ["boleto", "chamado", "cobranca"] {
        let examples = common::repo().join("examples");
        let (status, body) = server
            .post(
                &format!("/hooks/{name}?token=demo-token"),
                read(examples.join(format!("{name}.json"))),
            )
            .await;
        assert_eq!(status, 200, "{name}: {body}");
        assert_eq!(
            body,
            json(examples.join(format!("{name}.expected.json"))),
            "{name}"
        );
    }
    server.stop().await;
}

/// `for_each` over a text would send one message per character, over a
/// mapping one per key: both are a 422 saying the list is not a list.
#[tokio::test]
async fn for_each_over_something_else_than_a_list_is_refused() {
    let demo = common::shipped_demo();
    let server = TestServer::start(demo.path()).await;
    let mut request: serde_json::Value =
        serde_json::from_slice(&read(common::repo().join("examples/cobranca.json"))).unwrap();
    for (shape, kind) in [(json!("texto"), "a text"), (json!({"a": 1}), "a mapping")] {
        request["data"]["boletos"] = shape;
        let (status, body) = server
            .post("/hooks/cobranca?token=demo-token", request.to_string())
            .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"]["code"], "render_failed", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("needs a list, and this is {kind}")),
            "{body}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn workload_bad_requests_get_400_naming_the_field() {
    let server = TestServer::start(&common::fixtures()).await;
    for (file, path) in [
        ("bad-request.json", Some("origin")),
        ("bad-request-noname.json", Some("contact.name")),
        ("bad-request-malformed.json", None),
    ] {
        let (status, body) = server
            .post("/hooks/boleto?token=demo-token", read(workload(file)))
            .await;
        assert_eq!(status, 400, "{file}: {body}");
        assert_eq!(body["error"]["code"], "invalid_request", "{file}");
        assert_eq!(body["error"]["path"].as_str(), path, "{file}: {body}");
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    }
    server.stop().await;
}

#[tokio::test]
async fn request_errors_name_the_field_and_what_was_expected() {
    let server = TestServer::start(&common::fixtures()).await;
    let good: serde_json::Value = serde_json::from_slice(&read(workload("request.json"))).unwrap();
    type Mutation = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Mutation, &str, &str)> = vec![
        (
            "wrong type",
            Box::new(|r| r["clientId"] = json!(true)),
            "clientId",
            "integer",
        ),
        (
            "negative id",
            Box::new(|r| r["id"] = json!(-1)),
            "id",
            "non-negative",
        ),
        (
            "non-numeric id string",
            Box::new(|r| r["id"] = json!("12a")),
            "id",
            "digits",
        ),
        (
            "channel",
            Box::new(|r| r["contact"]["type"] = json!("SMS")),
            "contact.type",
            "WHATSAPP",
        ),
        (
            "missing contact",
            Box::new(|r| {
                r.as_object_mut().unwrap().remove("contact");
            }),
            "contact",
            "missing",
        ),
        (
            "missing uid",
            Box::new(|r| {
                r["contact"].as_object_mut().unwrap().remove("uid");
            }),
            "contact.uid",
            "missing",
        ),
        (
            "blank name",
            Box::new(|r| r["contact"]["name"] = json!("  ")),
            "contact.name",
            "empty",
        ),
        (
            "name not a string",
            Box::new(|r| r["contact"]["name"] = json!(5)),
            "contact.name",
            "string",
        ),
    ];
    for (what, mutate, path, expected) in cases {
        let mut body = good.clone();
        mutate(&mut body);
        let (status, resp) = server
            .post("/hooks/boleto?token=demo-token", body.to_string())
            .await;
        assert_eq!(status, 400, "{what}: {resp}");
        assert_eq!(resp["error"]["path"], path, "{what}: {resp}");
        let message = resp["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{what}: {message}");
    }

    // Numbers may arrive as numeric strings; extra fields are ignored.
    let mut body = good.clone();
    body["id"] = json!("3589818");
    body["clientId"] = json!("72");
    body["futureField"] = json!({"x": 1});
    let (status, resp) = server
        .post("/hooks/boleto?token=demo-token", body.to_string())
        .await;
    assert_eq!(status, 200, "{resp}");
    server.stop().await;
}

#[tokio::test]
async fn http_level_errors_are_json_too() {
    let server = TestServer::start(&common::fixtures()).await;
    let body = read(workload("request.json"));

    let resp = server
        .client
        .post(server.url("/hooks/boleto?token=demo-token"))
        .header("content-type", "text/plain")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["error"]["code"],
        "unsupported_media_type"
    );

    let huge = vec![b' '; recado::state::DEFAULT_BODY_LIMIT + 1];
    let (status, resp) = server.post("/hooks/boleto?token=demo-token", huge).await;
    assert_eq!(
        (status, resp["error"]["code"].as_str()),
        (413, Some("payload_too_large"))
    );

    let (status, resp) = server
        .post("/hooks/nope?token=demo-token", body.clone())
        .await;
    assert_eq!(
        (status, resp["error"]["code"].as_str()),
        (404, Some("unknown_integration"))
    );

    let (status, resp) = server.post("/other", body.clone()).await;
    assert_eq!(
        (status, resp["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    let resp = server
        .client
        .get(server.url("/hooks/boleto"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["error"]["code"],
        "method_not_allowed"
    );

    let (status, resp) = server.post("/hooks/boleto?token=demo-token", "").await;
    assert_eq!(
        (status, resp["error"]["code"].as_str()),
        (400, Some("invalid_request"))
    );
    server.stop().await;
}

#[tokio::test]
async fn unknown_client_wrong_token_and_other_tenants_token_get_identical_401s() {
    let dir = integrations_with(ACME);
    let server = TestServer::start(dir.path()).await;
    let demo = read(workload("request.json"));
    let unknown_client = String::from_utf8(demo.clone())
        .unwrap()
        .replace("\"clientId\": 72", "\"clientId\": 9999");

    let mut answers = Vec::new();
    for (path, body) in [
        ("/hooks/boleto?token=wrong-token", demo.clone()),
        ("/hooks/boleto", demo.clone()),
        ("/hooks/boleto?token=acme-secret-1", demo.clone()), // acme's token, demo's clientId
        (
            "/hooks/boleto?token=demo-token",
            unknown_client.clone().into_bytes(),
        ),
        (
            "/hooks/hello?token=demo-token",
            request(7, json!({})).into_bytes(),
        ), // demo's token, acme's clientId
    ] {
        let (status, _, bytes) = server.post_raw(path, body).await;
        answers.push((status, bytes));
    }
    assert_eq!(answers[0].0, 401);
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");

    // Every token of a tenant works (rotation), plain or hashed, by header.
    for token in ["acme-secret-1", "acme-secret-2", "acme-secret-3"] {
        let resp = server
            .client
            .post(server.url("/hooks/hello"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(request(8, json!({"note": "ok"})))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    server.stop().await;
}

#[tokio::test]
async fn render_and_output_faults_get_422_naming_file_message_and_field() {
    let dir = integrations_with(ACME);
    let server = TestServer::start(dir.path()).await;
    let post = |path: &'static str, data: serde_json::Value| {
        let server = &server;
        async move {
            server
                .post(
                    &format!("/hooks/{path}?token=acme-secret-1"),
                    request(7, data),
                )
                .await
        }
    };

    // Request data is text, never a template.
    let (status, body) = post(
        "hello",
        json!({"note": "{{ contact.key }} {% for x in range(9) %}"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!([{"type": "TEXT", "value": "Olá, Ana! {{ contact.key }} {% for x in range(9) %}"}])
    );

    // A null is an error too: it would print as "none".
    let (status, body) = post("echo", json!({"t": null})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("render_failed")),
        "{body}"
    );
    assert!(
        body["error"]["message"].as_str().unwrap().contains("null"),
        "{body}"
    );
    // So is a list or a mapping: printed, it would reach the contact as
    // `{'numero': 'A-1'}`. The message says so without the value.
    for shape in [
        json!({"numero": "A-1", "cliente": "Ana"}),
        json!(["A-1", "Ana"]),
    ] {
        let (status, body) = post("echo", json!({ "t": shape })).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("render_failed")),
            "{body}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("a list or a mapping"), "{body}");
        assert!(
            !message.contains("A-1") && !message.contains("Ana"),
            "{body}"
        );
    }
    let (status, body) = post("tz", json!({"n": null})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!([{"type": "TEXT", "value": "America/Sao_Paulo"}, {"type": "TEXT", "value": "sem valor"}])
    );

    // A missing field is an error, never an empty value.
    let (status, body) = post("hello", json!({})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "render_failed");
    assert_eq!(body["error"]["integration"], "acme/hello.yaml");
    assert_eq!(body["error"]["path"], "messages[0].text");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("data.note is missing from the request"),
        "{body}"
    );

    let (status, body) = post("link", json!({"url": "/relative/file.pdf"})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("invalid_output")),
        "{body}"
    );
    assert_eq!(body["error"]["integration"], "acme/link.yaml");
    assert_eq!(body["error"]["path"], "messages[0]");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("`value` must be an absolute http(s) URL"));

    let (status, body) = post("echo", json!({"t": "x".repeat(4097)})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("invalid_output")),
        "{body}"
    );
    assert!(body["error"]["message"].as_str().unwrap().contains("4096"));
    let (status, _) = post("echo", json!({"t": "é".repeat(4096)})).await;
    assert_eq!(status, 200, "4096 characters (not bytes) are allowed");

    for bad in ["a\nb", "a\tb", "a     b"] {
        let (status, body) = post("tpl", json!({"v": bad})).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("invalid_output")),
            "{bad:?}: {body}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("body.parameters[0].value"),
            "{body}"
        );
    }
    let (status, body) = post("tpl", json!({"v": "a    b"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body[0]["body"]["parameters"],
        json!([{"index": 1, "value": "a    b"}])
    );

    // Nothing to send is an empty array, not an error.
    let (status, body) = post("optional", json!({"send": false})).await;
    assert_eq!((status, body), (200, json!([])));
    let (status, body) = post("optional", json!({})).await;
    assert_eq!((status, body), (200, json!([])));
    let (status, body) = post("optional", json!({"send": true})).await;
    assert_eq!(
        (status, body),
        (200, json!([{"type": "TEXT", "value": "sim"}]))
    );
    server.stop().await;
}

#[tokio::test]
async fn a_broken_file_is_left_out_and_the_rest_is_served() {
    let dir = integrations_with(&[
        ("demo/broken.yaml", "messages:\n  - text: \"{{ oops \"\n"),
        ("nofile/other.yaml", "messages:\n  - text: hi\n"),
    ]);
    let snapshot = recado::config::load_dir(dir.path());
    let errors: Vec<String> = snapshot.all_errors().map(|e| e.to_string()).collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with("demo/broken.yaml:2:"), "{errors:?}");
    assert!(
        errors[1].starts_with("nofile/tenant.yaml: cannot read"),
        "{errors:?}"
    );
    let server = TestServer::start(dir.path()).await;
    let (status, _) = server
        .post(
            "/hooks/boleto?token=demo-token",
            read(workload("request.json")),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = server
        .post(
            "/hooks/broken?token=demo-token",
            read(workload("request.json")),
        )
        .await;
    assert_eq!(status, 404);
    server.stop().await;
}

/// `urlencode` and `wordcount` are built in: a link in a message can carry
/// a contact's name in its query.
#[tokio::test]
async fn urlencode_and_wordcount_render_in_messages() {
    let mut files = ACME.to_vec();
    files.push((
        "acme/pay.yaml",
        "messages:\n  - text: \"https://loja.example.com/pagar?nome={{ contact.name | urlencode }}&ref={{ data.ref | urlencode }}\"\n  - text: \"{{ data.note | wordcount }} palavras\"\n",
    ));
    let dir = integrations_with(&files);
    let server = TestServer::start(dir.path()).await;
    let (status, body) = server
        .post(
            "/hooks/pay?token=acme-secret-1",
            request(
                7,
                json!({"ref": "A&B=1/2 ç", "note": "Olá, tudo bem? Até já."}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!([
            {"type": "TEXT", "value": "https://loja.example.com/pagar?nome=Ana%20Souza&ref=A%26B%3D1/2%20%C3%A7"},
            {"type": "TEXT", "value": "5 palavras"},
        ])
    );
    server.stop().await;
}
