//! Render cost of the boleto workload, stage by stage, without HTTP: request
//! parsing, rendering, and the whole path from body bytes to answer bytes.

use std::path::PathBuf;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use recado::render::{render, request_context};
use recado::request::PlatformRequest;

fn boleto(c: &mut Criterion) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let snapshot = recado::config::load_dir(&root.join("tests/data/integrations"));
    assert!(snapshot.errors.is_empty(), "{:?}", snapshot.errors);
    let program = &snapshot.tenants["demo"].integrations["boleto"].program;
    let body = std::fs::read(root.join("examples/boleto.json")).unwrap();
    let req = PlatformRequest::parse(&body).unwrap();
    let ctx = request_context(&req);

    c.bench_function("parse_request", |b| {
        b.iter(|| PlatformRequest::parse(black_box(&body)).unwrap())
    });
    c.bench_function("request_context", |b| {
        b.iter(|| request_context(black_box(&req)))
    });
    {
        let env = recado::config::compile::environment(&recado::config::compile::CompileOptions {
            timezone: "America/Sao_Paulo".into(),
            fuel: recado::config::compile::DEFAULT_FUEL,
        });
        for (name, src) in [
            ("tpl_var", "{{ data.boleto_url }}"),
            ("tpl_first_name", "Olá, {{ contact.name | first_name }}!"),
            ("tpl_brl", "{{ data.valor | brl }}"),
            ("tpl_date", "{{ data.vencimento | dateformat }}"),
        ] {
            let t = env.template_from_str(src).unwrap();
            c.bench_function(name, |b| b.iter(|| t.render(black_box(&ctx)).unwrap()));
        }
    }
    c.bench_function("render_boleto", |b| {
        b.iter(|| render(program, black_box(&ctx), 50).unwrap())
    });
    c.bench_function("body_to_answer", |b| {
        b.iter(|| {
            let req = PlatformRequest::parse(black_box(&body)).unwrap();
            let messages = render(program, &request_context(&req), 50).unwrap();
            serde_json::to_vec(&messages).unwrap()
        })
    });
}

criterion_group!(benches, boleto);
criterion_main!(benches);
