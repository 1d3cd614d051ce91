//! The run report as a person sees it: the demo's `report.html` rendered by headless
//! Chromium (every section and chart there, no console error, nothing fetched), and a
//! report of an output folder without campaigns that says what is missing.

use std::path::Path;
use std::process::Command;

use crate::support::*;

const AS_OF: &str = "2026-06-01";

fn winback(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_winback"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Chromium as the environment describes it for a closed network: no background requests.
fn chromium(profile: &Path) -> Command {
    let mut c = Command::new("chromium");
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

#[test]
fn the_demo_report_renders_in_headless_chromium_with_every_section() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, out, state) = (
        tmp.path().join("data"),
        tmp.path().join("out"),
        tmp.path().join("state"),
    );
    let (code, text) = winback(
        &repo(),
        &[
            "demo",
            "--rows",
            "6000",
            "--as-of",
            AS_OF,
            "--dir",
            data.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{text}");
    let page = out.join(format!("_report/as_of={AS_OF}/report.html"));
    assert!(
        text.contains(&page.display().to_string()),
        "the demo prints the report path: {text}"
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.len() < 3_000_000, "{} bytes", html.len());
    for banned in ["http:", "https:", "<script", "src=", "@import", "url("] {
        assert!(
            !html.contains(banned),
            "the page refers to {banned}: it must need no network"
        );
    }

    let url = format!("file://{}", page.display());
    let dom = chromium(&tmp.path().join("profile-dom"))
        .args(["--dump-dom", &url])
        .output()
        .unwrap();
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    for id in [
        "glance",
        "rfm",
        "pareto",
        "value",
        "lapses",
        "churn",
        "at_risk",
        "reasons",
        "backtest",
        "campaigns",
        "stay",
        "vip",
        "calls",
        "manifest",
    ] {
        assert!(
            dom_text.contains(&format!("id=\"{id}\"")),
            "section {id} is rendered"
        );
    }
    let charts = dom_text.matches("<svg").count();
    assert!(charts >= 14, "{charts} charts");
    let log = String::from_utf8_lossy(&dom.stderr);
    assert!(!log.contains("CONSOLE"), "console messages: {log}");
    assert!(!log.contains("Uncaught"), "script errors: {log}");
    for id in [
        "glance",
        "rfm",
        "pareto",
        "lapses",
        "churn",
        "at_risk",
        "reasons",
        "campaigns",
        "stay",
        "vip",
        "calls",
    ] {
        let section = dom_text.split(&format!("id=\"{id}\"")).nth(1).unwrap();
        let section = section.split("<section").next().unwrap();
        assert!(
            section.contains("<svg") || id == "glance",
            "section {id} has its chart"
        );
        assert!(
            !section.contains("class=\"empty\""),
            "section {id} is empty"
        );
    }
    // The demo messages on its first night (as_of - 35) and reads the results on the
    // second, once the first night's windows have ended: every section says what it covers.
    let campaigns = dom_text.split("id=\"campaigns\"").nth(1).unwrap();
    let campaigns = campaigns.split("<section").next().unwrap();
    assert!(
        campaigns.contains("cover the contact night 2026-04-27"),
        "{campaigns}"
    );
    assert!(campaigns.contains("Funnel of campaign winback_quick, contact night 2026-04-27"));
    assert!(campaigns.contains("Tonight (2026-06-01), not in the figures above"));
    assert!(
        !campaigns.contains("In progress"),
        "the first night has results"
    );
    let churn = dom_text.split("id=\"churn\"").nth(1).unwrap();
    assert!(churn.contains("Covers the 26 weeks from 2025-12-02 to 2026-06-01"));
    let stay = dom_text.split("id=\"stay\"").nth(1).unwrap();
    let stay = stay.split("<section").next().unwrap();
    assert!(
        stay.contains("after a contact night from 2026-04-27 to 2026-04-27"),
        "{stay}"
    );
    assert!(stay.contains("won back by a message"));
    assert!(stay.contains("came back by themselves (holdout)"));
    assert!(stay.contains("90-day revenue is not known yet"));
    let reasons = dom_text.split("id=\"reasons\"").nth(1).unwrap();
    assert!(reasons.contains("lapsed as of 2026-06-01"));
    // Issue 26: the opportunistic cell has its campaign; the VIPs thanked on the first
    // night are measured (in progress: their lapse window runs 180 days), and tonight's
    // thank-yous have their funnel, apart from the win-back campaigns.
    let campaigns = dom_text.split("id=\"campaigns\"").nth(1).unwrap();
    let campaigns = campaigns.split("<section").next().unwrap();
    assert!(campaigns.contains("winback_opportunistic"), "{campaigns}");
    assert!(!campaigns.contains("vip_recognition"), "{campaigns}");
    let vip = dom_text.split("id=\"vip\"").nth(1).unwrap();
    let vip = vip.split("<section").next().unwrap();
    assert!(
        vip.contains("active customers are VIPs as of 2026-06-01"),
        "{vip}"
    );
    assert!(vip.contains("so far (in progress)"), "{vip}");
    assert!(vip.contains("Funnel of campaign vip_recognition"), "{vip}");
    // CPR before the silence: valuable customers with a warning, by grade.
    let at_risk = dom_text.split("id=\"at_risk\"").nth(1).unwrap();
    let at_risk = at_risk.split("<section").next().unwrap();
    assert!(
        at_risk.contains("customers of grades A and B have not lapsed yet"),
        "{at_risk}"
    );
    // The call list: the first night's calls have outcomes (the demo's team reached some
    // between the nights), tonight's have none yet.
    let calls = dom_text.split("id=\"calls\"").nth(1).unwrap();
    let calls = calls.split("<section").next().unwrap();
    assert!(
        calls.contains("customers have been on a call list"),
        "{calls}"
    );
    assert!(!calls.contains("reached 0 customers"), "{calls}");
    // How the run went: tonight's spend against the budget split.
    let manifest = dom_text.split("id=\"manifest\"").nth(1).unwrap();
    assert!(
        manifest.contains("Tonight's budget: spend against each campaign's share"),
        "{manifest}"
    );

    // A screenshot kept as an artifact of the test run.
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report");
    std::fs::create_dir_all(&artifacts).unwrap();
    let png = artifacts.join("demo-report.png");
    let shot = chromium(&tmp.path().join("profile-shot"))
        .args([
            "--window-size=1200,4000",
            &format!("--screenshot={}", png.display()),
            &url,
        ])
        .output()
        .unwrap();
    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    assert!(
        std::fs::metadata(&png).unwrap().len() > 10_000,
        "a real picture"
    );
}

#[test]
fn a_report_without_campaigns_says_which_sections_are_empty_and_why() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir);
    let (code, text) = winback(dir, &["run", "--as-of", AS_OF, "--no-send"]);
    assert_eq!(code, 0, "{text}");
    let (code, text) = winback(dir, &["report", "--as-of", AS_OF]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("section campaigns is empty"), "{text}");
    assert!(text.contains("section backtest is empty"), "{text}");
    assert!(!text.contains("section rfm is empty"), "{text}");
    let page = dir.join(format!("out/_report/as_of={AS_OF}/report.html"));
    let html = std::fs::read_to_string(page).unwrap();
    assert!(html.contains("id=\"campaigns\""));
    assert!(html.contains("no campaign results"), "the page says why");
}
