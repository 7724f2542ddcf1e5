/*
 * A stand-in for the NVIDIA driver's libnvidia-ml.so.1, for the nvml provider's tests only (no GPU on the machines
 * that run them). It exports the NVML entry points the provider calls, with the exact signatures and struct layouts of
 * NVIDIA's nvml.h (NVML API 12; e.g. NVIDIA/go-nvml gen/nvml/nvml.h), and answers from files the test names:
 * `<dir>/gpu<i>.bin` (the SPDM report for GPU i) and `<dir>/chain<i>.pem` (its attestation certificate chain).
 * The test switches behaviour through fake_nvml_set(key, value): cc, devtools, environment, count, arch, dir, and
 * fail=<function>:<nvmlReturn_t> to make one entry point fail. It records the nonce each report was asked for.
 * Built by enclave-job/attest/gpu-nvml.test.ts with `cc -shared -fPIC` into a temporary directory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int nvmlReturn_t;
typedef struct nvmlDevice_st *nvmlDevice_t;

#define NVML_SUCCESS 0
#define NVML_ERROR_UNINITIALIZED 1
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_NOT_FOUND 6
#define NVML_ERROR_INSUFFICIENT_SIZE 7

typedef struct nvmlConfComputeSystemState_st {
  unsigned int environment;
  unsigned int ccFeature;
  unsigned int devToolsMode;
} nvmlConfComputeSystemState_t;

#define NVML_GPU_CERT_CHAIN_SIZE 0x1000
#define NVML_GPU_ATTESTATION_CERT_CHAIN_SIZE 0x1400
typedef struct nvmlConfComputeGpuCertificate_st {
  unsigned int certChainSize;
  unsigned int attestationCertChainSize;
  unsigned char certChain[NVML_GPU_CERT_CHAIN_SIZE];
  unsigned char attestationCertChain[NVML_GPU_ATTESTATION_CERT_CHAIN_SIZE];
} nvmlConfComputeGpuCertificate_t;

#define NVML_CC_GPU_CEC_NONCE_SIZE 0x20
#define NVML_CC_GPU_ATTESTATION_REPORT_SIZE 0x2000
#define NVML_CC_GPU_CEC_ATTESTATION_REPORT_SIZE 0x1000
typedef struct nvmlConfComputeGpuAttestationReport_st {
  unsigned int isCecAttestationReportPresent;
  unsigned int attestationReportSize;
  unsigned int cecAttestationReportSize;
  unsigned char nonce[NVML_CC_GPU_CEC_NONCE_SIZE];
  unsigned char attestationReport[NVML_CC_GPU_ATTESTATION_REPORT_SIZE];
  unsigned char cecAttestationReport[NVML_CC_GPU_CEC_ATTESTATION_REPORT_SIZE];
} nvmlConfComputeGpuAttestationReport_t;

#define MAX_DEVICES 64

static unsigned int cfg_cc = 1, cfg_devtools = 0, cfg_environment = 2, cfg_count = 1, cfg_arch = 9;
static char cfg_dir[4096] = ".";
static char cfg_fail_fn[128] = "";
static int cfg_fail_ret = 0;
static int initialized = 0, init_calls = 0, shutdown_calls = 0;
static unsigned char last_nonce[MAX_DEVICES][NVML_CC_GPU_CEC_NONCE_SIZE];

static int failing(const char *fn, nvmlReturn_t *ret) {
  if (strcmp(cfg_fail_fn, fn) != 0) return 0;
  *ret = cfg_fail_ret;
  return 1;
}

static int index_of(nvmlDevice_t device) {
  long i = (long)device - 0x1000;
  return (i >= 0 && i < (long)cfg_count) ? (int)i : -1;
}

/* Reads `<dir>/<name>` into out (at most max bytes); the size, or -1. */
static long read_file(const char *name, unsigned char *out, long max) {
  char path[4300];
  snprintf(path, sizeof path, "%s/%s", cfg_dir, name);
  static unsigned char scratch[NVML_CC_GPU_ATTESTATION_REPORT_SIZE + 1];
  if (max >= (long)sizeof scratch) return -1;
  FILE *f = fopen(path, "rb");
  if (f == NULL) return -1;
  long n = (long)fread(scratch, 1, (size_t)max + 1, f); /* one more than fits: too large is told apart */
  fclose(f);
  if (n > max) return -2;
  memcpy(out, scratch, (size_t)n);
  return n;
}

/* ---- test controls ---- */

void fake_nvml_set(const char *key, const char *value) {
  if (strcmp(key, "cc") == 0) cfg_cc = (unsigned int)atoi(value);
  else if (strcmp(key, "devtools") == 0) cfg_devtools = (unsigned int)atoi(value);
  else if (strcmp(key, "environment") == 0) cfg_environment = (unsigned int)atoi(value);
  else if (strcmp(key, "count") == 0) cfg_count = (unsigned int)atoi(value);
  else if (strcmp(key, "arch") == 0) cfg_arch = (unsigned int)atoi(value);
  else if (strcmp(key, "dir") == 0) snprintf(cfg_dir, sizeof cfg_dir, "%s", value);
  else if (strcmp(key, "fail") == 0) {
    const char *colon = strchr(value, ':');
    if (colon == NULL) {
      cfg_fail_fn[0] = 0;
      cfg_fail_ret = 0;
    } else {
      snprintf(cfg_fail_fn, sizeof cfg_fail_fn, "%.*s", (int)(colon - value), value);
      cfg_fail_ret = atoi(colon + 1);
    }
  }
}

int fake_nvml_calls(const char *what) {
  if (strcmp(what, "init") == 0) return init_calls;
  if (strcmp(what, "shutdown") == 0) return shutdown_calls;
  return -1;
}

/* Copies the nonce GPU `index` was last asked to sign into out (32 bytes); 0, or -1 for a bad index. */
int fake_nvml_last_nonce(unsigned int index, unsigned char *out) {
  if (index >= MAX_DEVICES) return -1;
  memcpy(out, last_nonce[index], NVML_CC_GPU_CEC_NONCE_SIZE);
  return 0;
}

/* ---- NVML ---- */

nvmlReturn_t nvmlInit_v2(void) {
  nvmlReturn_t ret;
  init_calls++;
  if (failing("nvmlInit_v2", &ret)) return ret;
  initialized = 1;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlShutdown(void) {
  shutdown_calls++;
  if (!initialized) return NVML_ERROR_UNINITIALIZED;
  initialized = 0;
  return NVML_SUCCESS;
}

const char *nvmlErrorString(nvmlReturn_t result) { return result == NVML_SUCCESS ? "Success" : "Fake error"; }

nvmlReturn_t nvmlSystemGetConfComputeState(nvmlConfComputeSystemState_t *state) {
  nvmlReturn_t ret;
  if (!initialized) return NVML_ERROR_UNINITIALIZED;
  if (failing("nvmlSystemGetConfComputeState", &ret)) return ret;
  if (state == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  state->environment = cfg_environment;
  state->ccFeature = cfg_cc;
  state->devToolsMode = cfg_devtools;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
  if (!initialized) return NVML_ERROR_UNINITIALIZED;
  if (version == NULL || length < 11) return NVML_ERROR_INSUFFICIENT_SIZE;
  snprintf(version, length, "%s", "570.124.06");
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
  nvmlReturn_t ret;
  if (!initialized) return NVML_ERROR_UNINITIALIZED;
  if (failing("nvmlDeviceGetCount_v2", &ret)) return ret;
  if (count == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  *count = cfg_count;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
  nvmlReturn_t ret;
  if (!initialized) return NVML_ERROR_UNINITIALIZED;
  if (failing("nvmlDeviceGetHandleByIndex_v2", &ret)) return ret;
  if (device == NULL || index >= cfg_count) return NVML_ERROR_INVALID_ARGUMENT;
  *device = (nvmlDevice_t)(long)(0x1000 + index);
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetArchitecture(nvmlDevice_t device, unsigned int *arch) {
  nvmlReturn_t ret;
  if (!initialized) return NVML_ERROR_UNINITIALIZED;
  if (failing("nvmlDeviceGetArchitecture", &ret)) return ret;
  if (index_of(device) < 0 || arch == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  *arch = cfg_arch;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
  if (!initialized) return NVML_ERROR_UNINITIALIZED;
  int i = index_of(device);
  if (i < 0 || name == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  snprintf(name, length, "Fake NVIDIA H100 %d", i);
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetConfComputeGpuCertificate(nvmlDevice_t device, nvmlConfComputeGpuCertificate_t *cert) {
  nvmlReturn_t ret;
  char name[64];
  if (!initialized) return NVML_ERROR_UNINITIALIZED;
  if (failing("nvmlDeviceGetConfComputeGpuCertificate", &ret)) return ret;
  int i = index_of(device);
  if (i < 0 || cert == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  memset(cert, 0, sizeof *cert);
  snprintf(name, sizeof name, "chain%d.pem", i);
  long n = read_file(name, cert->attestationCertChain, NVML_GPU_ATTESTATION_CERT_CHAIN_SIZE);
  if (n == -2) return NVML_ERROR_INSUFFICIENT_SIZE;
  if (n < 0) return NVML_ERROR_NOT_FOUND;
  cert->attestationCertChainSize = (unsigned int)n;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetConfComputeGpuAttestationReport(nvmlDevice_t device,
                                                          nvmlConfComputeGpuAttestationReport_t *report) {
  nvmlReturn_t ret;
  char name[64];
  if (!initialized) return NVML_ERROR_UNINITIALIZED;
  if (failing("nvmlDeviceGetConfComputeGpuAttestationReport", &ret)) return ret;
  int i = index_of(device);
  if (i < 0 || report == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  memcpy(last_nonce[i], report->nonce, NVML_CC_GPU_CEC_NONCE_SIZE);
  snprintf(name, sizeof name, "gpu%d.bin", i);
  long n = read_file(name, report->attestationReport, NVML_CC_GPU_ATTESTATION_REPORT_SIZE);
  if (n == -2) return NVML_ERROR_INSUFFICIENT_SIZE;
  if (n < 0) return NVML_ERROR_NOT_FOUND;
  report->attestationReportSize = (unsigned int)n;
  report->isCecAttestationReportPresent = 0;
  report->cecAttestationReportSize = 0;
  return NVML_SUCCESS;
}
