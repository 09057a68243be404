// The shape of sandlot's configuration. YAML keys are the snake_case names below.

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
export const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/** `oci`: any runc-compatible CLI (runc, crun, youki). `runsc`: gVisor. */
export type RuntimeType = 'oci' | 'runsc';
export const RUNTIME_TYPES: readonly RuntimeType[] = ['oci', 'runsc'];

/** How runsc networks a pod: `sandbox` = gVisor's netstack, `host` = the host stack inside the pod netns. */
export type RunscNetwork = 'auto' | 'sandbox' | 'host';
export const RUNSC_NETWORKS: readonly RunscNetwork[] = ['auto', 'sandbox', 'host'];

export interface RuntimeHandlerConfig {
  type: RuntimeType;
  /** Binary name (looked up on PATH) or absolute path. */
  path: string;
  /** Extra global arguments placed before the subcommand. */
  args: string[];
  /** runsc only: the network mode. */
  network: RunscNetwork;
  /** runsc only: the --overlay2 value ("" leaves runsc's default). */
  overlay: string;
  /** Port-forward through a relay process inside the sandbox instead of dialling the netns. */
  port_forward_relay: boolean;
}

export interface SandlotConfig {
  socket_path: string;
  root_dir: string;
  state_dir: string;
  log_level: LogLevel;
  /** host:port of the Prometheus endpoint; "" turns it off. */
  metrics_address: string;
  /** OTLP/gRPC endpoint for traces; "" turns tracing off. */
  otlp_endpoint: string;
  default_runtime: string;
  runtimes: Record<string, RuntimeHandlerConfig>;
  conmon_path: string;
  /**
   * The cgroup (below cgroup_root) each conmon is moved into once it has started, as
   * CRI-O's conmon_cgroup: conmons then outlive the daemon's own cgroup (a DaemonSet
   * pod's) and do not count against it. "" leaves them in the daemon's cgroup.
   */
  conmon_cgroup: string;
  catatonit_path: string;
  cni_conf_dir: string;
  cni_bin_dirs: string[];
  /** Subnet of the embedded default CNI network (bridge sandlot0). */
  cni_default_subnet: string;
  cni_default_bridge: string;
  /** Registry host → mirror endpoints tried first, e.g. docker.io: [http://127.0.0.1:5000]. */
  registry_mirrors: Record<string, string[]>;
  /** Registry hosts spoken to over plain HTTP (loopback ones always are). */
  insecure_registries: string[];
  /** host:port of the exec/attach/port-forward server; port 0 picks a free one. */
  streaming_address: string;
  /** PEM certificate for TLS on the streaming server; "" serves plain HTTP (loopback is the default guard). */
  streaming_tls_cert_file: string;
  /** PEM private key of streaming_tls_cert_file; set both or neither. */
  streaming_tls_key_file: string;
  /** PEM CA bundle: set, every streaming client must present a certificate it signed (the kubelet's proxy can). */
  streaming_tls_client_ca_file: string;
  /** Every pod cgroup path is placed under this one. */
  cgroup_root: string;
  /** Parent for pods whose request names no cgroup_parent. */
  default_cgroup_parent: string;
  /** Image archives or OCI layout directories imported at start (pinned), e.g. the built-in busybox. */
  preload_images: string[];
  /** Most bytes one image layer may unpack to (its uncompressed tar); a bigger layer fails the pull. */
  max_layer_unpacked_bytes: number;
  /** Most bytes all layers of one image may unpack to together. */
  max_image_unpacked_bytes: number;
  /** OCI hook definition directories (oci-hooks(5)); a file in a later one masks the same name in an earlier one. */
  hooks_dirs: string[];
  /** CDI spec directories; a device in a later one overrides the same name in an earlier one. */
  cdi_spec_dirs: string[];
}
