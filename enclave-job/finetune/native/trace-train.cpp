// provenant-trace-train: a full fine-tune of an F32 llama.cpp model with plain SGD that records every optimizer step
// (docs/training-trace.md). Built by enclave-job/finetune/llama-build.ts against the llama.cpp source that
// node-llama-cpp ships; it uses the same training entry points as examples/training/finetune.cpp (llama_opt_init,
// llama_opt_epoch, the ggml-opt optimizer callback) and trusts nothing but its arguments and input files.
//
// Each step t trains on one datapoint (a window of n_ctx + 1 tokens of the data, stride n_ctx / 2, the windows of
// every epoch in an order shuffled with the recorded seed) and appends an 80-byte record to --records:
//   t (u64 BE) | SHA-256(the n_ctx + 1 token ids as i32 LE) | loss (f32 bits, u32 BE) | lr (f32 bits, u32 BE) | leaf
// where leaf = SHA-256("provenant/trace/v1" | the 48 bytes before it). Every --checkpoint-every steps the model is
// saved (llama_model_save_to_file) as <checkpoint-dir>/ckpt-<step>.gguf; the final model goes to --out.
//
// Determinism: CPU only, a fixed thread count, no dropout, no sampling. The gradient accumulators of ggml-opt are
// zeroed before every optimizer step (ggml_opt_reset, see reset_gradients below), so with SGD the weights are the
// whole training state: loading checkpoint j and training steps j..j+k reproduces checkpoint j+k bit for bit.
// --from/--to replay a stretch from a checkpoint; --fault models a dishonest trainer in tests.
#include "llama.h"
#include "ggml.h"
#include "ggml-opt.h"

#ifdef __cplusplus
extern "C" {
#endif
#include "hash/sha256/sha256.h"
#ifdef __cplusplus
}
#endif

#include <cerrno>
#include <cinttypes>
#include <clocale>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <time.h>

namespace {

const char LEAF_DOMAIN[] = "provenant/trace/v1";  // 18 bytes, no terminator in the hash

struct Fault {
    std::string kind;  // skip | lr | data | checkpoint
    int64_t     step  = -1;
    double      value = 0;
};

struct Args {
    std::string model, data, out, records, checkpoint_dir;
    int         n_ctx = 64, threads = 1, epochs = 1, checkpoint_every = 0;
    uint64_t    seed = 0;
    double      lr = 1e-3, lr_min = 0, weight_decay = 0;
    std::string schedule = "constant";
    int64_t     from = 0, to = -1;
    bool        trace = true;
    std::vector<Fault> faults;
};

// CPU time of this process, microseconds: what a step costs, whatever else the machine runs.
int64_t process_cpu_us() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

[[noreturn]] void usage_error(const std::string & message) {
    fprintf(stderr, "provenant-trace-train: %s\n", message.c_str());
    exit(2);
}

bool parse_u64(const char * text, uint64_t & out) {
    if (text == nullptr || *text == '\0') return false;
    char * end = nullptr;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || text[0] == '-') return false;
    out = v;
    return true;
}

int64_t int_arg(const char * text, const char * flag, int64_t min, int64_t max) {
    uint64_t v = 0;
    if (!parse_u64(text, v) || v < (uint64_t) min || v > (uint64_t) max) {
        usage_error(std::string("--") + flag + " must be an integer from " + std::to_string(min) + " to " +
                    std::to_string(max));
    }
    return (int64_t) v;
}

double number_arg(const char * text, const char * flag) {
    char * end = nullptr;
    double v   = text == nullptr ? NAN : strtod(text, &end);
    if (text == nullptr || *end != '\0' || !std::isfinite(v) || v < 0) {
        usage_error(std::string("--") + flag + " must be a finite non-negative number");
    }
    return v;
}

Fault parse_fault(const std::string & spec) {
    Fault f;
    std::stringstream ss(spec);
    std::string part;
    std::vector<std::string> parts;
    while (std::getline(ss, part, ':')) parts.push_back(part);
    if (parts.size() < 2) usage_error("--fault must be kind:step[:value]");
    f.kind = parts[0];
    f.step = int_arg(parts[1].c_str(), "fault step", 0, INT64_MAX / 2);
    if (f.kind == "lr" || f.kind == "data") {
        if (parts.size() != 3) usage_error("--fault " + f.kind + " needs a value");
        f.value = number_arg(parts[2].c_str(), "fault value");
    } else if (f.kind != "skip" && f.kind != "checkpoint") {
        usage_error("unknown --fault kind " + f.kind);
    }
    return f;
}

Args parse_args(int argc, char ** argv) {
    Args a;
    for (int i = 1; i < argc; i++) {
        std::string flag = argv[i];
        auto value = [&]() -> const char * {
            if (i + 1 >= argc) usage_error("missing value for " + flag);
            return argv[++i];
        };
        if (flag == "--model") a.model = value();
        else if (flag == "--data") a.data = value();
        else if (flag == "--out") a.out = value();
        else if (flag == "--records") a.records = value();
        else if (flag == "--checkpoint-dir") a.checkpoint_dir = value();
        else if (flag == "--ctx") a.n_ctx = (int) int_arg(value(), "ctx", 256, 1 << 16);
        else if (flag == "--threads") a.threads = (int) int_arg(value(), "threads", 1, 512);
        else if (flag == "--epochs") a.epochs = (int) int_arg(value(), "epochs", 1, 1 << 20);
        else if (flag == "--checkpoint-every") a.checkpoint_every = (int) int_arg(value(), "checkpoint-every", 1, 1 << 30);
        else if (flag == "--seed") a.seed = (uint64_t) int_arg(value(), "seed", 0, 0xFFFFFFFFll);
        else if (flag == "--lr") a.lr = number_arg(value(), "lr");
        else if (flag == "--lr-min") a.lr_min = number_arg(value(), "lr-min");
        else if (flag == "--weight-decay") a.weight_decay = number_arg(value(), "weight-decay");
        else if (flag == "--schedule") a.schedule = value();
        else if (flag == "--from") a.from = int_arg(value(), "from", 0, INT64_MAX / 2);
        else if (flag == "--to") a.to = int_arg(value(), "to", 1, INT64_MAX / 2);
        else if (flag == "--no-trace") a.trace = false;
        else if (flag == "--fault") a.faults.push_back(parse_fault(value()));
        else usage_error("unknown argument " + flag);
    }
    if (a.model.empty() || a.data.empty() || a.out.empty()) usage_error("--model, --data and --out are required");
    if (a.trace && a.records.empty()) usage_error("--records is required unless --no-trace");
    if (a.trace && a.checkpoint_every > 0 && a.checkpoint_dir.empty()) usage_error("--checkpoint-dir is required");
    if (a.schedule != "constant" && a.schedule != "linear") usage_error("--schedule must be constant or linear");
    // llama.cpp pads every context to a multiple of 256 (llama-context.cpp); a smaller --ctx would silently train
    // on 256-token windows, so only what it really uses is accepted.
    if (a.n_ctx % 256 != 0) usage_error("--ctx must be a multiple of 256 (llama.cpp pads contexts to 256)");
    if (a.lr <= 0 || a.lr > 1) usage_error("--lr must be in (0, 1]");
    if (a.weight_decay > 1) usage_error("--weight-decay must be in [0, 1]");
    return a;
}

const Fault * fault_at(const Args & a, const char * kind, int64_t step) {
    for (const Fault & f : a.faults) {
        if (f.kind == kind && f.step == step) return &f;
    }
    return nullptr;
}

// splitmix64 (Steele, Lea, Flood 2014): the datapoint order of epoch e is a Fisher-Yates shuffle driven by
// splitmix64 seeded with seed ^ ((e + 1) * 0x9E3779B97F4A7C15).
uint64_t splitmix64(uint64_t & state) {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

std::vector<int64_t> epoch_order(uint64_t seed, int64_t epoch, int64_t ndata) {
    std::vector<int64_t> order(ndata);
    for (int64_t i = 0; i < ndata; i++) order[i] = i;
    uint64_t state = seed ^ ((uint64_t) (epoch + 1) * 0x9E3779B97F4A7C15ull);
    for (int64_t i = ndata - 1; i > 0; i--) {
        const int64_t j = (int64_t) (splitmix64(state) % (uint64_t) (i + 1));
        std::swap(order[i], order[j]);
    }
    return order;
}

// The learning rate of step t of n, as the float that goes to the optimizer.
float learning_rate(const Args & a, int64_t t, int64_t n) {
    if (a.schedule == "linear" && n > 1) {
        return (float) (a.lr + (a.lr_min - a.lr) * ((double) t / (double) (n - 1)));
    }
    return (float) a.lr;
}

void put_u64_be(uint8_t * p, uint64_t v) {
    for (int i = 7; i >= 0; i--) { p[i] = (uint8_t) (v & 0xff); v >>= 8; }
}

void put_f32_be(uint8_t * p, float f) {
    uint32_t bits;
    memcpy(&bits, &f, 4);
    for (int i = 3; i >= 0; i--) { p[i] = (uint8_t) (bits & 0xff); bits >>= 8; }
}

void sha256_of(const uint8_t * data, size_t size, uint8_t out[32]) {
    sha256_t h;
    sha256_init(&h);
    sha256_update(&h, data, size);
    sha256_final(&h, out);
}

// SHA-256 of the token ids as little-endian i32, whatever the host's byte order.
void batch_digest(const llama_token * tokens, size_t count, uint8_t out[32]) {
    std::vector<uint8_t> bytes(count * 4);
    for (size_t i = 0; i < count; i++) {
        const uint32_t v = (uint32_t) tokens[i];
        bytes[4 * i + 0] = (uint8_t) v;
        bytes[4 * i + 1] = (uint8_t) (v >> 8);
        bytes[4 * i + 2] = (uint8_t) (v >> 16);
        bytes[4 * i + 3] = (uint8_t) (v >> 24);
    }
    sha256_of(bytes.data(), bytes.size(), out);
}

// The optimizer's parameters for the current step, and the gradient reset: ggml-opt keeps gradient accumulators
// across optimizer steps when graphs are rebuilt per step (llama.cpp's case), and only zeroes them when its static
// buffer is first allocated. They would be hidden optimizer state; zeroing them right before each step's
// forward/backward pass (this callback runs inside ggml_opt_eval, before the graph is computed) leaves the weights as
// the only state, as plain SGD expects.
struct OptState {
    float              lr     = 1e-3f;
    float              wd     = 0.0f;
    ggml_opt_context_t opt    = nullptr;
};
OptState g_opt;

ggml_opt_optimizer_params optimizer_params(void * userdata) {
    OptState & s = *(OptState *) userdata;
    if (s.opt != nullptr) ggml_opt_reset(s.opt, /*optimizer =*/ false);
    ggml_opt_optimizer_params p = ggml_opt_get_default_optimizer_params(nullptr);
    p.sgd.alpha   = s.lr;
    p.sgd.wd      = s.wd;
    p.adamw.alpha = s.lr;
    p.adamw.wd    = s.wd;
    return p;
}

void after_step(bool, ggml_opt_context_t opt, ggml_opt_dataset_t, ggml_opt_result_t, int64_t, int64_t, int64_t) {
    g_opt.opt = opt;
}

void quiet_log(ggml_log_level level, const char * text, void *) {
    if (level == GGML_LOG_LEVEL_ERROR || level == GGML_LOG_LEVEL_WARN) fputs(text, stderr);
}

bool read_file(const std::string & path, std::string & out) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    std::ostringstream ss;
    ss << in.rdbuf();
    out = ss.str();
    return true;
}

// A replaced checkpoint, for tests: flips the lowest mantissa bit of the file's last 32-bit word (the last weight).
bool corrupt_file(const std::string & path) {
    FILE * f = fopen(path.c_str(), "r+b");
    if (f == nullptr) return false;
    fseek(f, -4, SEEK_END);
    int c = fgetc(f);
    fseek(f, -4, SEEK_END);
    fputc(c ^ 1, f);
    fclose(f);
    return true;
}

}  // namespace

int main(int argc, char ** argv) {
    std::setlocale(LC_NUMERIC, "C");
    const Args a = parse_args(argc, argv);

    llama_log_set(quiet_log, nullptr);
    llama_backend_init();

    std::string text;
    if (!read_file(a.data, text)) usage_error("cannot read --data " + a.data);
    if (text.size() > (size_t) INT32_MAX) usage_error("--data is larger than 2 GiB");

    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers     = 0;
    mp.load_mode        = LLAMA_LOAD_MODE_NONE;  // writable weights, as finetune.cpp forces
    mp.use_extra_bufts  = false;                 // no repacked weight layouts: the saved tensors are the trained ones
    llama_model * model = llama_model_load_from_file(a.model.c_str(), mp);
    if (model == nullptr) {
        fprintf(stderr, "provenant-trace-train: cannot load %s\n", a.model.c_str());
        return 3;
    }

    llama_context_params cp = llama_context_default_params();
    cp.n_ctx            = (uint32_t) a.n_ctx;
    cp.n_batch          = (uint32_t) a.n_ctx;
    cp.n_ubatch         = (uint32_t) a.n_ctx;  // one optimizer step per datapoint (opt_period = 1)
    cp.n_threads        = a.threads;
    cp.n_threads_batch  = a.threads;
    cp.type_k           = GGML_TYPE_F32;       // OUT_PROD has no F16 backward, as finetune.cpp notes
    cp.type_v           = GGML_TYPE_F32;
    cp.flash_attn_type  = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.no_perf          = true;
    llama_context * ctx = llama_init_from_model(model, cp);
    if (ctx == nullptr) {
        fprintf(stderr, "provenant-trace-train: cannot create a context\n");
        return 3;
    }

    if ((int) llama_n_ctx(ctx) != a.n_ctx) {
        usage_error("the context is " + std::to_string(llama_n_ctx(ctx)) + " tokens, not --ctx " + std::to_string(a.n_ctx));
    }

    const llama_vocab * vocab = llama_model_get_vocab(model);

    // The training path never sets the CPU backend's thread count (only llama_decode's graph_compute does), so
    // without this one-token decode it would run on GGML_DEFAULT_N_THREADS, not --threads. finetune.cpp gets the
    // same effect from common_init_from_params' warm-up. The memory is cleared again before any training.
    {
        llama_token bos = llama_vocab_bos(vocab);
        if (bos == LLAMA_TOKEN_NULL) bos = 0;
        if (llama_decode(ctx, llama_batch_get_one(&bos, 1)) != 0) {
            fprintf(stderr, "provenant-trace-train: the warm-up decode failed\n");
            return 3;
        }
        llama_memory_clear(llama_get_memory(ctx), true);
    }

    int32_t n = -llama_tokenize(vocab, text.data(), (int32_t) text.size(), nullptr, 0, true, false);
    if (n <= 0) usage_error("--data does not tokenize");
    std::vector<llama_token> tokens(n);
    if (llama_tokenize(vocab, text.data(), (int32_t) text.size(), tokens.data(), n, true, false) != n) {
        usage_error("--data does not tokenize");
    }
    const int64_t stride = a.n_ctx / 2;
    if ((int64_t) tokens.size() < a.n_ctx + 2) usage_error("--data is shorter than one context window");
    const int64_t ndata = ((int64_t) tokens.size() - a.n_ctx - 1) / stride;
    if (ndata < 1) usage_error("--data is shorter than one context window");
    const int64_t total = ndata * a.epochs;
    const int64_t to    = a.to < 0 ? total : a.to;
    if (a.from >= to || to > total) usage_error("--from/--to must satisfy 0 <= from < to <= steps (" + std::to_string(total) + ")");

    g_opt.wd = (float) a.weight_decay;
    llama_opt_params op{};
    op.n_ctx_train     = 0;
    op.param_filter    = llama_opt_param_filter_all;
    op.param_filter_ud = nullptr;
    op.get_opt_pars    = optimizer_params;
    op.get_opt_pars_ud = &g_opt;
    op.optimizer_type  = GGML_OPT_OPTIMIZER_TYPE_SGD;
    llama_opt_init(ctx, model, op);

    // One datapoint per step: the dataset holds the step's window, refilled before each llama_opt_epoch call.
    ggml_opt_dataset_t dataset = ggml_opt_dataset_init(GGML_TYPE_I32, GGML_TYPE_I32, a.n_ctx, a.n_ctx, 1, 1);
    llama_token * ds_data   = (llama_token *) ggml_opt_dataset_data(dataset)->data;
    llama_token * ds_labels = (llama_token *) ggml_opt_dataset_labels(dataset)->data;
    ggml_opt_result_t result = ggml_opt_result_init();

    FILE * records = nullptr;
    if (a.trace) {
        records = fopen(a.records.c_str(), "wb");
        if (records == nullptr) usage_error("cannot write --records " + a.records);
    }
    printf("{\"event\":\"start\",\"tokens\":%zu,\"ndata\":%" PRId64 ",\"steps\":%" PRId64 ",\"from\":%" PRId64
           ",\"to\":%" PRId64 ",\"stride\":%" PRId64 "}\n",
           tokens.size(), ndata, total, a.from, to, stride);
    fflush(stdout);

    int64_t current_epoch = -1;
    std::vector<int64_t> order;
    float last_loss = 0.0f;
    int64_t trace_cpu_us = 0;  // CPU spent on recording: leaves, records, checkpoint saves (the benchmark's figure)
    const int64_t t_start = llama_time_us();
    for (int64_t t = a.from; t < to; t++) {
        const int64_t epoch = t / ndata;
        if (epoch != current_epoch) {
            order = epoch_order(a.seed, epoch, ndata);
            current_epoch = epoch;
        }
        int64_t idata = order[t % ndata];
        const Fault * data_fault = fault_at(a, "data", t);
        // A different shard: the datapoint `value` places after the scheduled one (recorded honestly below).
        if (data_fault != nullptr) idata = (idata + (int64_t) data_fault->value) % ndata;
        const llama_token * window = tokens.data() + idata * stride;
        memcpy(ds_data, window, a.n_ctx * sizeof(llama_token));
        memcpy(ds_labels, window + 1, a.n_ctx * sizeof(llama_token));

        const float lr_recorded = learning_rate(a, t, total);
        const Fault * lr_fault  = fault_at(a, "lr", t);
        g_opt.lr = lr_fault != nullptr ? (float) lr_fault->value : lr_recorded;

        const int64_t t0 = llama_time_us();
        const int64_t c0 = process_cpu_us();
        float loss = last_loss;
        if (fault_at(a, "skip", t) == nullptr) {
            ggml_opt_result_reset(result);
            llama_opt_epoch(ctx, dataset, result, nullptr, /*idata_split =*/ 1, after_step, nullptr);
            double loss_d = 0;
            ggml_opt_result_loss(result, &loss_d, nullptr);
            loss = (float) loss_d;  // one physical batch: the mean is the f32 loss itself
        }
        last_loss = loss;

        const int64_t c_trace = process_cpu_us();
        if (a.trace) {
            uint8_t rec[80];
            put_u64_be(rec, (uint64_t) t);
            batch_digest(window, (size_t) a.n_ctx + 1, rec + 8);
            put_f32_be(rec + 40, loss);
            put_f32_be(rec + 44, lr_recorded);
            uint8_t leaf_input[sizeof(LEAF_DOMAIN) - 1 + 48];
            memcpy(leaf_input, LEAF_DOMAIN, sizeof(LEAF_DOMAIN) - 1);
            memcpy(leaf_input + sizeof(LEAF_DOMAIN) - 1, rec, 48);
            sha256_of(leaf_input, sizeof(leaf_input), rec + 48);
            if (fwrite(rec, 1, sizeof(rec), records) != sizeof(rec)) usage_error("cannot write --records");
        }
        const int64_t us     = llama_time_us() - t0;
        const int64_t cpu_us = process_cpu_us() - c0;
        trace_cpu_us += process_cpu_us() - c_trace;

        const int64_t done = t + 1;
        if (a.trace && a.checkpoint_every > 0 && done % a.checkpoint_every == 0 && done < to) {
            const int64_t c_save = process_cpu_us();
            const std::string path = a.checkpoint_dir + "/ckpt-" + std::to_string(done) + ".gguf";
            llama_model_save_to_file(model, path.c_str());
            if (fault_at(a, "checkpoint", done) != nullptr && !corrupt_file(path)) usage_error("cannot alter " + path);
            trace_cpu_us += process_cpu_us() - c_save;
        }
        printf("{\"event\":\"step\",\"t\":%" PRId64 ",\"loss\":%.9g,\"lr\":%.9g,\"us\":%" PRId64
               ",\"cpuUs\":%" PRId64 "}\n",
               t, (double) loss, (double) lr_recorded, us, cpu_us);
    }
    const int64_t train_us = llama_time_us() - t_start;
    if (records != nullptr && fclose(records) != 0) usage_error("cannot write --records");

    llama_model_save_to_file(model, a.out.c_str());
    if (fault_at(a, "checkpoint", to) != nullptr && !corrupt_file(a.out)) usage_error("cannot alter " + a.out);
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    const int64_t cpu_total = (int64_t) (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000000 +
                              usage.ru_utime.tv_usec + usage.ru_stime.tv_usec;
    printf("{\"event\":\"done\",\"steps\":%" PRId64 ",\"trainUs\":%" PRId64 ",\"cpuUs\":%" PRId64
           ",\"traceCpuUs\":%" PRId64 "}\n",
           to - a.from, train_us, cpu_total, trace_cpu_us);
    fflush(stdout);

    ggml_opt_result_free(result);
    ggml_opt_dataset_free(dataset);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
