use crate::campaign::message::{Medium, Message};
use crate::channels::Outcome;
use crate::channels::test_support::*;

#[tokio::test]
async fn writes_one_file_per_campaign_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let ch = build("out", "type = \"file\"\nmedium = \"sms\"\n", dir.path());
    let mut batch = messages(3, Medium::Sms, "out");
    batch.push(message(7, Medium::Sms, "out", "amends/../x"));
    let out = ch.send(&batch).await.into_result().unwrap();
    assert!(out.iter().all(|o| matches!(o, Outcome::Delivered { .. })));
    ch.send(&batch[..1]).await.into_result().unwrap();
    let quick = std::fs::read_to_string(dir.path().join("out/quick.jsonl")).unwrap();
    let lines: Vec<Message> = quick
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[3], batch[0]);
    assert!(dir.path().join("out/amends_.._x.jsonl").exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}
