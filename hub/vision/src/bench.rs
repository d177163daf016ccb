//! placeholder
pub struct VisionBenchOptions;
pub struct VisionBenchReport;
pub fn run_vision_bench() {}
pub fn run_tract_infer_child() {}
