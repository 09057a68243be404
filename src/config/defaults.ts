import type { SandlotConfig } from './types.js';

export const DEFAULT_CONFIG_FILE = '/etc/sandlot/config.yaml';

/** The embedded defaults: what `make run` starts with when no file exists. */
export function defaultConfig(): SandlotConfig {
  return {
    socket_path: '/run/sandlot/sandlot.sock',
    root_dir: '/var/lib/sandlot',
    state_dir: '/run/sandlot',
    log_level: 'info',
    metrics_address: '127.0.0.1:9436',
    otlp_endpoint: '',
    default_runtime: 'runc',
    runtimes: {
      runc: { type: 'oci', path: 'runc', args: [], network: 'auto', overlay: '', port_forward_relay: false },
      crun: { type: 'oci', path: 'crun', args: [], network: 'auto', overlay: '', port_forward_relay: false },
      runsc: { type: 'runsc', path: 'runsc', args: [], network: 'auto', overlay: '', port_forward_relay: false },
    },
    conmon_path: 'conmon',
    conmon_cgroup: '',
    catatonit_path: 'catatonit',
    cni_conf_dir: '/etc/cni/net.d',
    cni_bin_dirs: ['/usr/lib/cni', '/opt/cni/bin'],
    cni_default_subnet: '10.88.0.0/16',
    cni_default_bridge: 'sandlot0',
    registry_mirrors: {},
    insecure_registries: [],
    streaming_address: '127.0.0.1:0',
    streaming_tls_cert_file: '',
    streaming_tls_key_file: '',
    streaming_tls_client_ca_file: '',
    cgroup_root: '/',
    default_cgroup_parent: '/sandlot',
    preload_images: [],
    max_layer_unpacked_bytes: 8 * 1024 ** 3,
    max_image_unpacked_bytes: 16 * 1024 ** 3,
    hooks_dirs: ['/usr/share/containers/oci/hooks.d', '/etc/containers/oci/hooks.d'],
    cdi_spec_dirs: ['/etc/cdi', '/var/run/cdi'],
  };
}
