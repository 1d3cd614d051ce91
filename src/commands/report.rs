//! `winback report`: the run's HTML report from an output folder, saying which sections
//! are empty and why.

use crate::cli::ReportArgs;
use crate::error::EXIT_OK;
use crate::pipeline::session;

pub async fn report(args: ReportArgs) -> anyhow::Result<i32> {
    let opts = super::run::load_options(&args.pipeline, args.output.clone());
    let pipeline = session::load(&args.pipeline.pipeline, &opts)?;
    let as_of = args.as_of.unwrap_or_else(|| session::today(&pipeline));
    let (path, data) =
        crate::report::write_report(&pipeline.output.url, as_of, Some(&args.state_dir)).await?;
    for (section, why) in &data.empty {
        println!("section {section} is empty: {why}");
    }
    println!("report: {path}");
    Ok(EXIT_OK)
}
