"""The PyTorch operator and the Hugging Face patch on CPU tensors (the engine's CPU path), where PyTorch is installed
(skipped with one line where it is not, as in CI): values and gradients against float64 PyTorch, the custom op's
registration (torch.library.opcheck), torch.compile without a graph break, and patched vs unpatched tiny Llama,
Qwen2, Mistral and Gemma 2 models. The same checks on the GPU, with the timings, are python/tests/gpu_check.py."""
import math
import unittest

import _support  # noqa: F401 - sets CALIB_LCE_LIB_DIR before the package loads a library

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = None

try:
    import transformers
except ImportError:
    transformers = None

NO_TORCH = "PyTorch not installed: the operator and the patch are checked on the GPU machine (gpu_check.py)"


def reference(e, c, t, *, bias=None, label_smoothing=0.0, ignore_index=-100, reduction="mean", temperature=1.0, softcap=None):
    """float64 PyTorch from the definition: T·CE_ε(softcap(z/T)), z = e·cᵀ + bias."""
    z = e.double() @ c.double().T
    if bias is not None:
        z = z + bias.double()
    s = z / temperature
    if softcap:
        s = softcap * torch.tanh(s / softcap)
    return temperature * F.cross_entropy(s.reshape(-1, s.shape[-1]), t.reshape(-1), label_smoothing=label_smoothing,
                                         ignore_index=ignore_index, reduction=reduction).reshape(
        t.shape if reduction == "none" else ())


def rel(a, b):
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


@unittest.skipIf(torch is None, NO_TORCH)
class Operator(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import calib_lce

        _support.cpu_library()  # built once for every test module (quietly)
        cls.lce = staticmethod(calib_lce.linear_cross_entropy)

    def inputs(self, N, D, V, dtype=None, ignore=0.0, seed=0):
        dtype = dtype or torch.float32
        g = torch.Generator().manual_seed(seed)
        e = torch.randn(N, D, generator=g)
        c = torch.randn(V, D, generator=g) / math.sqrt(D)
        t = torch.randint(0, V, (N,), generator=g)
        t[torch.rand(N, generator=g) < ignore] = -100
        return e.to(dtype).requires_grad_(), c.to(dtype).requires_grad_(), t

    def check(self, dtype, loss_tol, grad_tol, **opts):
        e, c, t = self.inputs(64, 24, 300, dtype, ignore=0.3)
        bias = torch.randn(300, dtype=torch.float32).requires_grad_() if opts.pop("bias", False) else None
        reduction = opts.get("reduction", "mean")
        loss = self.lce(e, c, t, bias=bias, **opts)
        self.assertEqual(loss.dtype, torch.float32)
        g = torch.randn(loss.shape, dtype=torch.float64) if reduction == "none" else torch.tensor(0.7, dtype=torch.float64)
        (loss.double() * g).sum().backward()
        e64, c64 = e.detach().double().requires_grad_(), c.detach().double().requires_grad_()
        b64 = bias.detach().double().requires_grad_() if bias is not None else None
        ref = reference(e64, c64, t, bias=b64, **opts)
        (ref * g).sum().backward()
        self.assertLessEqual(rel(loss.detach(), ref.detach()), loss_tol, "loss")
        self.assertEqual(e.grad.dtype, dtype)
        self.assertLessEqual(rel(e.grad, e64.grad), grad_tol, "dE")
        self.assertLessEqual(rel(c.grad, c64.grad), grad_tol, "dC")
        if bias is not None:
            self.assertLessEqual(rel(bias.grad, b64.grad), grad_tol, "dbias")

    def test_against_float64_pytorch(self):
        for opts in (dict(), dict(label_smoothing=0.1), dict(label_smoothing=0.1, reduction="sum"),
                     dict(label_smoothing=0.1, reduction="none"), dict(label_smoothing=0.2, softcap=3.0),
                     dict(label_smoothing=0.1, temperature=0.7, softcap=5.0, bias=True)):
            kw = dict(opts)
            with self.subTest(**opts):
                self.check(torch.float32, 1e-5, 1e-4, **kw)
                # fp16 ⊂ fp32: the same values computed in fp32, gradients rounded to fp16 at the end
                self.check(torch.float16, 1e-5, 2e-3, **kw)
                self.check(torch.bfloat16, 1e-5, 5e-3, **kw)

    def test_strides_and_leading_dimensions(self):
        e, c, t = self.inputs(48, 16, 100)
        e3 = e.detach().reshape(4, 12, 16).transpose(0, 1).requires_grad_()  # (12, 4, 16), not row-major
        t3 = t.reshape(4, 12).T
        loss = self.lce(e3, c.detach().T.contiguous().T, t3, reduction="none")
        self.assertEqual(loss.shape, (12, 4))
        ref = reference(e3.detach(), c.detach(), t3, reduction="none")
        self.assertLessEqual(rel(loss, ref), 1e-5)
        loss.sum().backward()
        self.assertEqual(e3.grad.shape, e3.shape)

    def test_mean_over_no_valid_token_is_nan(self):
        e, c, _ = self.inputs(5, 8, 20)
        loss = self.lce(e, c, torch.full((5,), -100))
        self.assertTrue(torch.isnan(loss))
        self.assertTrue(torch.isnan(F.cross_entropy(torch.randn(5, 20), torch.full((5,), -100))))
        loss.backward()
        self.assertFalse(e.grad.any())

    def test_no_grad_runs_forward_only(self):
        e, c, t = self.inputs(16, 8, 40)
        with torch.no_grad():
            loss = self.lce(e, c, t, label_smoothing=0.1)
        self.assertFalse(loss.requires_grad)
        self.assertLessEqual(rel(loss, reference(e.detach(), c.detach(), t, label_smoothing=0.1)), 1e-5)

    def test_bad_input_names_the_argument(self):
        e, c, t = self.inputs(4, 8, 16)
        cases = [
            (dict(c=c[:, :4]), ValueError, r"c must have shape \(V, D\) with V ≥ 1 and D = e.shape\[-1\] = 8"),
            (dict(t=t[:3]), ValueError, r"targets must have shape \(4,\)"),
            (dict(t=t.float()), TypeError, r"targets must have dtype int64 or int32, got float32"),
            (dict(e=e.double()), TypeError, r"e must have dtype"),
            (dict(c=c.detach().bfloat16()), TypeError, r"e and c must have the same dtype"),
            (dict(label_smoothing=1.5), ValueError, r"label_smoothing must be in \[0, 1\] \(got 1.5\)"),
            (dict(temperature=0.0), ValueError, r"temperature must be a finite number > 0"),
            (dict(softcap=-1.0), ValueError, r"softcap must be None or a finite number > 0"),
            (dict(reduction="avg"), ValueError, r"reduction must be 'mean', 'sum' or 'none'"),
            (dict(bias=torch.zeros(3)), ValueError, r"bias must have shape \(16,\)"),
            (dict(workspace_bytes=-1), ValueError, r"workspace_bytes must be an integer ≥ 0"),
        ]
        for kw, exc, pattern in cases:
            args = dict(e=e, c=c, t=t)
            args.update({k: kw.pop(k) for k in ("e", "c", "t") if k in kw})
            with self.subTest(pattern), self.assertRaisesRegex(exc, pattern):
                self.lce(args["e"], args["c"], args["t"], **kw)
        bad = t.clone()
        bad[2] = 16
        with self.assertRaisesRegex(ValueError, r"targets\[2\] = 16 is outside \[0, 16\) and is not ignore_index"):
            self.lce(e, c, bad)

    def test_opcheck(self):
        from calib_lce import ops

        e, c, t = self.inputs(20, 8, 50)
        b = torch.randn(50, requires_grad=True)
        for reduction in (0, 1, 2):
            args = (e, c, t, b, 0.1, -100, reduction, 1.0, 0.0, 0, True)
            torch.library.opcheck(ops._forward, args)
        torch.library.opcheck(ops._backward_none, (torch.randn(20), e.detach(), c.detach(), t, None, 0.1, -100, 1.0,
                                                   0.0, 0))

    def test_compile_has_no_graph_break_and_the_same_values(self):
        e, c, t = self.inputs(32, 16, 64)

        def f(e, c, t):
            return self.lce(e * 2.0, c, t, label_smoothing=0.1, softcap=4.0) * 3.0

        explain = torch._dynamo.explain(f)(e, c, t)
        self.assertEqual(explain.graph_break_count, 0, explain.break_reasons)
        eager = f(e, c, t)
        (ge, gc) = torch.autograd.grad(eager, (e, c))
        compiled = torch.compile(f, backend="aot_eager", fullgraph=True)(e, c, t)
        (ce, cc) = torch.autograd.grad(compiled, (e, c))
        self.assertEqual(float(compiled), float(eager))
        self.assertTrue(torch.equal(ce, ge) and torch.equal(cc, gc))


def tiny_models():
    from transformers import (Gemma2Config, Gemma2ForCausalLM, LlamaConfig, LlamaForCausalLM, MistralConfig,
                              MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM)

    common = dict(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=64)
    return [
        (LlamaForCausalLM, LlamaConfig(**common, tie_word_embeddings=True)),
        (Qwen2ForCausalLM, Qwen2Config(**common, tie_word_embeddings=False)),
        (MistralForCausalLM, MistralConfig(**common)),
        (Gemma2ForCausalLM, Gemma2Config(**common, head_dim=8, final_logit_softcapping=3.0, query_pre_attn_scalar=8,
                                         sliding_window=16)),
    ]


@unittest.skipIf(torch is None or transformers is None,
                 "PyTorch or transformers not installed: the Hugging Face patch is checked on the GPU machine")
class HuggingFacePatch(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        _support.cpu_library()  # built once for every test module (quietly)

    def batch(self, V, seed=0):
        g = torch.Generator().manual_seed(seed)
        ids = torch.randint(0, V, (3, 10), generator=g)
        labels = ids.clone()
        labels[:, :4] = -100  # the prompt
        labels[2, 7:] = -100
        return ids, labels

    def stock_smoothed(self, model, ids, labels, eps):
        """The unpatched model's logits with PyTorch's label-smoothed cross-entropy (ForCausalLMLoss's shift)."""
        logits = model(input_ids=ids).logits
        shift = F.pad(labels, (0, 1), value=-100)[:, 1:]
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), shift.reshape(-1), label_smoothing=eps)

    def test_patched_loss_and_gradients_equal_unpatched(self):
        import calib_lce

        for cls, config in tiny_models():
            with self.subTest(cls.__name__):
                torch.manual_seed(0)
                model = cls(config).train()
                ids, labels = self.batch(config.vocab_size)
                stock = model(input_ids=ids, labels=labels).loss
                stock_grads = torch.autograd.grad(stock, list(model.parameters()), allow_unused=True)
                stock_ls = self.stock_smoothed(model, ids, labels, 0.1)
                calib_lce.patch(model, label_smoothing=0.0)
                self.assertTrue(calib_lce.is_patched(model))
                out = model(input_ids=ids, labels=labels)
                self.assertIsNone(out.logits)
                self.assertLessEqual(rel(out.loss, stock), 1e-5)
                grads = torch.autograd.grad(out.loss, list(model.parameters()), allow_unused=True)
                for (name, _), a, b in zip(model.named_parameters(), grads, stock_grads):
                    if b is not None:
                        self.assertLessEqual(rel(a, b), 1e-4, name)
                calib_lce.patch(model, label_smoothing=0.1)
                self.assertLessEqual(rel(model(input_ids=ids, labels=labels).loss, stock_ls), 1e-5)
                # gradient accumulation: sum / num_items_in_batch
                n = torch.tensor(40)
                summed = model(input_ids=ids, labels=labels, num_items_in_batch=n).loss
                valid = int((F.pad(labels, (0, 1), value=-100)[:, 1:] != -100).sum())
                self.assertLessEqual(rel(summed, stock_ls * valid / 40), 1e-5)
                # eval: the model's logits are returned (Gemma 2's soft-capped), the loss is the patched one
                model.eval()
                with torch.no_grad():
                    out = model(input_ids=ids, labels=labels)
                    plain = model(input_ids=ids)
                    self.assertIsNotNone(out.logits)
                    self.assertTrue(torch.equal(out.logits, plain.logits))
                    tup = model(input_ids=ids, labels=labels, return_dict=False)
                    self.assertIsInstance(tup, tuple)
                    self.assertEqual(float(tup[0]), float(out.loss))
                calib_lce.unpatch(model)
                self.assertFalse(calib_lce.is_patched(model))
                self.assertNotIn("forward", model.__dict__)
                model.train()
                self.assertEqual(float(model(input_ids=ids, labels=labels).loss), float(stock))

    def test_inside_peft_and_torch_compile_wrappers(self):
        import calib_lce

        cls, config = tiny_models()[1]  # Qwen2, untied lm_head
        ids, labels = self.batch(config.vocab_size)
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError:
            peft_model = None
        else:
            torch.manual_seed(0)
            peft_model = get_peft_model(cls(config), LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                                                 modules_to_save=["lm_head"]))
            stock = self.stock_smoothed(peft_model, ids, labels, 0.1)
            calib_lce.patch(peft_model, label_smoothing=0.1)
            self.assertTrue(calib_lce.is_patched(peft_model))
            loss = peft_model(input_ids=ids, labels=labels).loss
            self.assertLessEqual(rel(loss, stock), 1e-5)
            loss.backward()
            trained = peft_model.base_model.model.lm_head.modules_to_save["default"].weight
            self.assertIsNotNone(trained.grad)  # the adapter's trainable copy of lm_head got the gradient
            self.assertIsNone(peft_model.base_model.model.lm_head.original_module.weight.grad)
        torch.manual_seed(0)
        model = cls(config)
        stock = self.stock_smoothed(model, ids, labels, 0.1)
        compiled = torch.compile(model, backend="aot_eager")
        calib_lce.patch(compiled, label_smoothing=0.1)
        self.assertLessEqual(rel(compiled(input_ids=ids, labels=labels).loss, stock), 1e-5)

    def test_gemma2_softcap_is_the_models_unless_given(self):
        import calib_lce

        cls, config = tiny_models()[3]
        model = cls(config)
        calib_lce.patch(model, label_smoothing=0.1)
        self.assertEqual(model._calib_lce.softcap, 3.0)
        calib_lce.patch(model, label_smoothing=0.1, softcap=0)
        self.assertIsNone(model._calib_lce.softcap)
        calib_lce.patch(model, label_smoothing=0.1, softcap=7.5)
        self.assertEqual(model._calib_lce.softcap, 7.5)

    def test_unsupported_models_and_options_are_refused(self):
        import calib_lce
        from transformers import GPT2Config, GPT2LMHeadModel

        with self.assertRaisesRegex(TypeError, r"calib_lce.patch supports LlamaForCausalLM, .*GPT2LMHeadModel"):
            calib_lce.patch(GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50)))
        cls, config = tiny_models()[0]
        with self.assertRaisesRegex(ValueError, r"label_smoothing must be in \[0, 1\]"):
            calib_lce.patch(cls(config), label_smoothing=2)
        with self.assertRaisesRegex(ValueError, r"reduction must be 'mean' or 'sum'"):
            calib_lce.patch(cls(config), reduction="none")

    def test_trainer_runs_the_patched_loss(self):
        import tempfile

        import calib_lce
        from transformers import Trainer, TrainingArguments

        cls, config = tiny_models()[0]
        rows = []
        for seed in range(8):
            ids, labels = self.batch(config.vocab_size, seed)
            rows += [{"input_ids": i, "labels": l} for i, l in zip(ids, labels)]

        def losses(patched):
            torch.manual_seed(0)
            model = cls(config)
            if patched:
                calib_lce.patch(model, label_smoothing=0.1)
            with tempfile.TemporaryDirectory() as out:
                args = TrainingArguments(output_dir=out, per_device_train_batch_size=4, gradient_accumulation_steps=2,
                                         max_steps=3, learning_rate=1e-3, logging_steps=1, report_to=[], use_cpu=True,
                                         label_smoothing_factor=0.0 if patched else 0.1, save_strategy="no",
                                         disable_tqdm=True)
                trainer = Trainer(model=model, args=args, train_dataset=rows)
                self.assertTrue(trainer.model_accepts_loss_kwargs)
                trainer.train()
            return [h["loss"] for h in trainer.state.log_history if "loss" in h]

        ours, stock = losses(True), losses(False)
        self.assertEqual(len(ours), 3)
        for a, b in zip(ours, stock):
            self.assertAlmostEqual(a, b, delta=1e-4 * abs(b))


if __name__ == "__main__":
    unittest.main()
