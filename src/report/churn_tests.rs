//! Tests of the churn sections: what each says it covers, its highlights, and why it is
//! empty when it is.

use chrono::{Days, NaiveDate};

use super::example_data::example;
use super::*;

fn section(html: &str, id: &str) -> String {
    let start = html.find(&format!("<section id=\"{id}\">")).expect(id);
    let end = html[start..].find("</section>").unwrap();
    html[start..start + end].to_string()
}

#[test]
fn churn_says_which_weeks_it_covers_and_highlights_the_grades_churning_faster() {
    let d = example();
    let s = section(&render(&d), "churn");
    let first = d.as_of - Days::new(7 * 25 + 6);
    assert!(
        s.contains(&format!("Covers the 26 weeks from {first} to {}", d.as_of)),
        "{s}"
    );
    // The example's mean is about 2.8% a week: grade A (4.1%) churns faster, B and C do not.
    assert_eq!(s.matches("<tr class=\"highlight\"><td>A</td>").count(), 1);
    assert!(!s.contains("<tr class=\"highlight\"><td>B</td>"));
    // The newest five weeks' holdout windows are still open, the sixth is complete.
    assert_eq!(s.matches("(in progress)").count(), 5, "{s}");
    assert!(s.contains("of 35</td>"));
}

#[test]
fn each_churn_section_says_why_it_is_empty() {
    let mut d = example();
    for w in &mut d.churn.as_mut().unwrap().weeks {
        (w.active, w.new_lapses) = (0, 0);
    }
    d.reasons = Some(Reasons::default());
    d.stay = Some(Stay::default());
    // What `winback report` prints for each: the words the section shows.
    super::gather_churn::note_empty(&mut d);
    assert!(d.empty["churn"].contains("in the 26 weeks up to 2024-06-30"));
    assert!(d.empty["reasons"].starts_with("No customer is lapsed as of 2024-06-30"));
    assert!(d.empty["stay"].starts_with("No win-back yet as of 2024-06-30"));
    let html = render(&d);
    assert!(section(&html, "churn").contains("no churn to measure yet"));
    assert!(section(&html, "reasons").contains("nothing to explain tonight"));
    assert!(section(&html, "stay").contains("No win-back yet as of 2024-06-30"));
    for id in ["churn", "reasons", "stay"] {
        assert!(section(&html, id).contains("class=\"empty\""), "{id}");
    }
}

#[test]
fn reasons_cover_tonights_lapses_and_every_cell_of_the_matrix() {
    let d = example();
    let s = section(&render(&d), "reasons");
    // (12 + 90 + 9 + 7) x (1 + 2 + 4 + 6) = 118 x 13
    assert!(
        s.contains("Covers the 1,534 customers lapsed as of 2024-06-30"),
        "{s}"
    );
    for cell in ["make_amends", "win_back", "opportunistic", "let_go"] {
        assert!(s.contains(&format!("<td>{cell}</td>")), "{cell}");
    }
    assert!(s.contains("<td>high value</td><td>company&#39;s fault</td><td>make_amends</td><td class=\"num\">80</td>"));
    // Valuable customers with a sign of our fault are highlighted: A and B, three reasons.
    assert_eq!(s.matches("<tr class=\"highlight\">").count(), 6);
    // A stated reason that is not the company's (moved away: objective) is not.
    let mut d = example();
    let r = d.reasons.as_mut().unwrap();
    r.by_grade.push(("A".into(), "moved_away".into(), 5));
    let s = section(&render(&d), "reasons");
    assert_eq!(s.matches("<tr class=\"highlight\">").count(), 6);
    assert!(s.contains("<td>moved_away</td>"), "{s}");
}

#[test]
fn stay_compares_won_back_with_natural_returns_and_says_what_is_not_known_yet() {
    let mut d = example();
    let s = section(&render(&d), "stay");
    assert!(
        s.contains("contact night from 2023-09-04 to 2024-06-29"),
        "{s}"
    );
    // 410 of 1,240 won back lapsed again (33.1%), 88 of 310 natural returns (28.4%).
    assert!(
        s.contains("33.1% of the won-back lapsed again, against 28.4%"),
        "{s}"
    );
    assert!(s.contains("84.20 each against 91.00"));
    let st = d.stay.as_mut().unwrap();
    for r in &mut st.rows {
        (r.complete_90, r.revenue_90) = (0, None);
        r.first_return = Some(NaiveDate::from_ymd_opt(2024, 6, 1).unwrap());
    }
    st.rows.truncate(1);
    let s = section(&render(&d), "stay");
    assert!(s.contains("not known yet"));
    assert!(s.contains("the earliest return was on 2024-06-01, its 90 days end on 2024-08-30"));
    assert!(s.contains("nothing to compare with"));
}
