//! Chart archive checks before a chart is handed on (sizes, paths, links, Chart.yaml, dependencies).
