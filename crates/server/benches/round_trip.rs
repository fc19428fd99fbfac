//! Guards the cost of one classification over HTTP on loopback (connection reuse, auth lookup,
//! body read, decode, model, SQLite record): a 150×150 space patch and a 1080p frame.

use criterion::{Criterion, criterion_group, criterion_main};
use valet_server::Settings;
use valet_store::{DeviceName, Store};

fn round_trip(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let data = tempfile::tempdir().unwrap();
    let key = runtime.block_on(async {
        let store = Store::open(data.path()).await.unwrap();
        let (_, key) = store.add_device(&DeviceName::parse("bench").unwrap(), chrono::Utc::now()).await.unwrap();
        key.expose().to_owned()
    });
    let settings =
        Settings { listen: "127.0.0.1:0".parse().unwrap(), data_dir: data.path().into(), ..Settings::default() };
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    runtime.spawn(async move {
        valet_server::run(settings, std::future::pending(), move |addr| ready_tx.send(addr).unwrap()).await.unwrap();
    });
    let url = format!("http://{}/v1/classify", ready_rx.recv().unwrap());
    let client = reqwest::Client::new();

    let mut group = c.benchmark_group("round_trip");
    for (name, jpeg) in [
        ("patch_150", valet_imaging::synthetic::photo_jpeg(150, 150, None, 1)),
        ("frame_1080p", valet_imaging::synthetic::photo_jpeg(1920, 1080, Some(205_000), 1)),
    ] {
        let body = bytes::Bytes::from(jpeg);
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| async {
                let response = client
                    .post(&url)
                    .bearer_auth(&key)
                    .header("content-type", "image/jpeg")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                assert!(response.status().is_success());
                response.bytes().await.unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, round_trip);
criterion_main!(benches);
