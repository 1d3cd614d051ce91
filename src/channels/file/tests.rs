use crate::channels::Outcome;
use crate::channels::test_support::*;
use crate::message::{Medium, Message};

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

#[tokio::test]
async fn appends_in_place_in_proportion_to_the_batch() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let ch = build("out", "type = \"file\"\nmedium = \"sms\"\n", dir.path());
    let path = dir.path().join("out/quick.jsonl");
    let mut expected = 0u64;
    let mut inode = None;
    for round in 0..50 {
        let batch: Vec<Message> = (0..20)
            .map(|i| message(round * 20 + i, Medium::Sms, "out", "quick"))
            .collect();
        expected += batch
            .iter()
            .map(|m| serde_json::to_vec(m).unwrap().len() as u64 + 1)
            .sum::<u64>();
        ch.send(&batch).await.into_result().unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        // The same file grows: no copy of what was written before (O(batch), not O(file)).
        assert_eq!(*inode.get_or_insert(meta.ino()), meta.ino());
        assert_eq!(meta.len(), expected);
    }
}

#[tokio::test]
async fn a_reader_never_sees_a_torn_line() {
    let dir = tempfile::tempdir().unwrap();
    let ch = build("out", "type = \"file\"\nmedium = \"sms\"\n", dir.path());
    let path = dir.path().join("out/quick.jsonl");
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (path, done) = (path.clone(), done.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                if let Ok(bytes) = std::fs::read(&path) {
                    // Complete lines are those ending in a newline; each parses.
                    let complete = match bytes.iter().rposition(|&b| b == b'\n') {
                        Some(i) => &bytes[..=i],
                        None => &bytes[..0],
                    };
                    for line in complete.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                        serde_json::from_slice::<Message>(line).expect("a torn line");
                    }
                    reads += 1;
                }
            }
            reads
        })
    };
    for round in 0..100 {
        let batch: Vec<Message> = (0..50)
            .map(|i| message(round * 50 + i, Medium::Sms, "out", "quick"))
            .collect();
        ch.send(&batch).await.into_result().unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(reader.join().unwrap() > 0);
    let all = std::fs::read_to_string(&path).unwrap();
    assert_eq!(all.lines().count(), 5000);
}

#[tokio::test]
async fn a_crash_between_write_and_record_is_settled_from_the_outbox() {
    use crate::channels::{Settlement, Unsettled};
    let dir = tempfile::tempdir().unwrap();
    let ch = build("out", "type = \"file\"\nmedium = \"sms\"\n", dir.path());
    let batch = messages(3, Medium::Sms, "out");
    // Written (the process then died before the ledger recorded it)...
    ch.send(&batch[..2]).await.into_result().unwrap();
    // ... and a write the crash cut short.
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("out/quick.jsonl"))
        .unwrap();
    f.write_all(b"{\"campaign\":\"quick\",\"idempotency_k")
        .unwrap();
    drop(f);
    let ask: Vec<Unsettled> = batch.iter().map(unsettled).collect();
    let got = ch.lookup(&ask).await.unwrap();
    assert!(matches!(got[0], Settlement::Accepted { .. }));
    assert!(matches!(got[1], Settlement::Accepted { .. }));
    assert!(matches!(got[2], Settlement::NotAccepted { .. }), "{got:?}");
}

#[tokio::test]
async fn a_call_channel_writes_the_call_list_as_csv_and_settles_from_it() {
    use crate::channels::{Settlement, Unsettled};
    let dir = tempfile::tempdir().unwrap();
    let ch = build("calls", "type = \"file\"\nmedium = \"call\"\n", dir.path());
    let call =
        |i: usize, owner: &str, reason: &str, evidence: Option<&str>, remedy: &str| Message {
            subject: Some(reason.to_string()),
            evidence: evidence.map(str::to_string),
            text: remedy.to_string(),
            owner: Some(owner.to_string()),
            html: None,
            unsubscribe_url: None,
            unsubscribe_mailto: None,
            ..message(i, Medium::Call, "calls", "amends")
        };
    let first = [call(
        1,
        "Ana",
        "a late delivery",
        Some("2 complaints, last 2025-02-20"),
        "Ask what went wrong.\nOffer 20% off",
    )];
    let second = [call(
        2,
        "Ben",
        "=HYPERLINK(\"x\")",
        None,
        "Replace it, \"no questions\"",
    )];
    ch.send(&first).await.into_result().unwrap();
    ch.send(&second).await.into_result().unwrap();
    // By hand: a header once; customer c1 (phone_of(1) = +15550000001), its owner, reason,
    // evidence and remedy (the line break a space); then c2, whose reason a spreadsheet
    // would run as a formula (prefixed with ') and quoted for its quotes, no evidence, and
    // a remedy quoted for its comma and quotes. as_of() and the entry date are 2025-03-10;
    // the key is message()'s.
    let text = std::fs::read_to_string(dir.path().join("calls/amends.csv")).unwrap();
    assert_eq!(
        text,
        "customer,phone,owner,reason,evidence,suggested_remedy,campaign,step,entry_date,as_of,key\n\
         c1,+15550000001,Ana,a late delivery,\"2 complaints, last 2025-02-20\",Ask what went wrong. Offer 20% off,amends,1,2025-03-10,2025-03-10,amends-1-c1-calls-2025-03-01\n\
         c2,+15550000002,Ben,\"'=HYPERLINK(\"\"x\"\")\",,\"Replace it, \"\"no questions\"\"\",amends,1,2025-03-10,2025-03-10,amends-1-c2-calls-2025-03-01\n"
    );
    // Reconciliation reads the list's keys: c1 and c2 are there, c3 is not.
    let ask: Vec<Unsettled> = [&first[0], &second[0], &call(3, "Ana", "r", None, "x")]
        .into_iter()
        .map(unsettled)
        .collect();
    let got = ch.lookup(&ask).await.unwrap();
    assert!(matches!(got[0], Settlement::Accepted { .. }), "{got:?}");
    assert!(matches!(got[1], Settlement::Accepted { .. }), "{got:?}");
    assert!(matches!(got[2], Settlement::NotAccepted { .. }), "{got:?}");
}
