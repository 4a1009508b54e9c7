//! `partyline-campaign`: runs the robustness campaigns on the simulator and prints the figures
//! (the same command line as `partyline campaign`). Exit status 0 only if no violation, leak or
//! hang was found.

use clap::Parser;

#[derive(Parser)]
#[command(name = "partyline-campaign", about = "Robustness campaigns for partyline.sys on the simulator")]
struct Main {
    #[command(flatten)]
    args: partyline_campaign::cli::CampaignArgs,
}

fn main() -> std::process::ExitCode {
    // Started as a worker of a campaign on several processes: serve and exit.
    partyline_campaign::workers::dispatch();
    partyline_campaign::cli::run(Main::parse().args)
}
