//! Overload: with one image worker and a line of one, a burst of uploads is answered, every one,
//! with a classification or at once with 503 and `Retry-After`; nothing waits unbounded, nothing
//! fails otherwise. Gate frames have the longer line (`admission.rs`'s unit test).

use valet_server::Settings;

use crate::helpers::spawn_app_with;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_past_the_workers_and_the_line_is_refused_at_once_with_503_and_retry_after() {
    let settings = Settings { decode_concurrency: 1, image_queue: 1, ..Settings::default() };
    let app = spawn_app_with(settings).await;
    // Big enough that decoding takes a while, so the burst finds the worker busy.
    let photo = valet_imaging::synthetic::photo_jpeg(3000, 2000, None, 4);
    let burst: Vec<_> = (0..12)
        .map(|_| {
            let (router, request) = (app.router.clone(), app.classify(photo.clone()));
            tokio::spawn(async move {
                let response = tower::ServiceExt::oneshot(router, request).await.unwrap();
                (response.status().as_u16(), response.headers().get("retry-after").is_some())
            })
        })
        .collect();
    let mut answered = Vec::new();
    for request in burst {
        answered.push(request.await.unwrap());
    }

    let classified = answered.iter().filter(|(status, _)| *status == 200).count();
    let refused: Vec<_> = answered.iter().filter(|(status, _)| *status == 503).collect();
    assert_eq!(classified + refused.len(), 12, "only 200 or 503: {answered:?}");
    assert!(classified >= 2, "the one at work and the one in line are answered: {answered:?}");
    assert!(!refused.is_empty(), "the rest is refused: {answered:?}");
    assert!(refused.iter().all(|(_, retry_after)| *retry_after), "{answered:?}");
}
