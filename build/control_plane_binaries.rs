/// The binaries of the local control plane (`tools/k8s/build` puts them in `.tools/k8s/bin`):
/// one list for the build script that gates the cluster tests and for the test fixture.
const CONTROL_PLANE_BINARIES: [&str; 6] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "kubectl",
];
