"""Fixtures: a tiny random LLaVA checkpoint (built from configs, saved as safetensors) and a fake
OpenAI-compatible chat-completions server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import torch
from eacps_vlm.criteria import _CONSISTENCY_PRIOR, _CONSISTENCY_PROMPT, ANSWER, HARDENING, IDENTITY, REALISM

ONE_LOGIT, ZERO_LOGIT, SPACE_LOGIT = 4.0, 16.0, 16.0
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['content'] is string %}{{ m['content'] }}"
    "{% else %}{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>{% else %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
LLAVA_SAMPLE = "<|im_start|>user\nRate the image.<|im_end|>\n<|im_start|>assistant\n"
#: the shape of SmolVLM's template: "<|im_start|>User:<image>text<end_of_utterance>\nAssistant:"
SMOLVLM_TEMPLATE = (
    "<|im_start|>{% for m in messages %}{{ m['role'] | capitalize }}:{% if m['content'] is string %}"
    "{{ m['content'] }}{% else %}{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>{% else %}"
    "{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


def _train_tokenizer(specials: list[str], image_token: str, *, ten_token: bool) -> Any:
    """A byte-level BPE tokenizer trained on the judge prompts (digits split one per token, like Qwen/Llama
    tokenizers) wrapped in ``PreTrainedTokenizerFast``; ``ten_token`` adds "10" as a single token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    corpus = [REALISM.instruction, IDENTITY.instruction, _CONSISTENCY_PROMPT, _CONSISTENCY_PRIOR, HARDENING]
    corpus += [*ANSWER.values(), "user assistant candidate image reference prior a red cube on a table"]
    trainer = trainers.BpeTrainer(
        vocab_size=420,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        extra_special_tokens={"image_token": image_token},
    )
    if ten_token:
        tokenizer.add_tokens(["10"])
    return tokenizer


def _sharpen(model: Any, tokenizer: Any, sample: str = LLAVA_SAMPLE, space_first: str | None = None) -> None:
    """Sharpen the next-token distribution and give "1" then "0" real mass (so "10" = "1", "0" matters):
    point their output rows along the final hidden state at the answer position of a sample prompt (for "1")
    and after it (for "0"). ``space_first``: a prompt after which the space token gets that treatment (a model
    that answers "Assistant:" with " 7", a space token then "7", like SmolVLM)."""
    with torch.no_grad():
        model.lm_head.weight.mul_(40.0)
        rows = {}
        todo = [("1", sample, ONE_LOGIT), ("0", sample + "1", ZERO_LOGIT)]
        if space_first is not None:
            todo.append((tokenizer.convert_ids_to_tokens(tokenizer.encode(" ")[0]), space_first, SPACE_LOGIT))
        for t, text, logit in todo:
            enc = tokenizer([text], return_tensors="pt")
            h = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], output_hidden_states=True)
            h = h.hidden_states[-1][0, -1]
            rows[tokenizer.convert_tokens_to_ids(t)] = logit * h / h.norm() ** 2
        for i, row in rows.items():
            model.lm_head.weight[i] = row


def _save(path: Path, processor: Any, model: Any, config: Any, safetensors: bool) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    processor.save_pretrained(path)
    if safetensors:
        model.save_pretrained(path, safe_serialization=True)
    else:
        config.save_pretrained(path)
        torch.save(model.state_dict(), path / "pytorch_model.bin")
    return path


def build_tiny_vlm(path: Path, *, ten_token: bool = False, seed: int = 0, safetensors: bool = True) -> Path:
    """A 2-layer LLaVA (CLIP vision tower + Llama text model) with a BPE tokenizer trained on the judge
    prompts, a CLIP image processor and a chat template. ``ten_token`` adds "10" as a single token."""
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    specials = ["<pad>", "<s>", "</s>", "<image>", "<|im_start|>", "<|im_end|>"]
    tokenizer = _train_tokenizer(specials, "<image>", ten_token=ten_token)
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        chat_template=CHAT_TEMPLATE,
        num_additional_image_tokens=1,
    )
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        text_config=LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            pad_token_id=tokenizer.pad_token_id,
            max_position_embeddings=1024,
        ),
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    _sharpen(model, tokenizer)
    return _save(path, processor, model, config, safetensors)


def build_tiny_idefics3(path: Path, *, ten_token: bool = False, seed: int = 0, safetensors: bool = True) -> Path:
    """A 2-layer Idefics3 / SmolVLM (SigLIP vision tower, pixel-shuffle connector, Llama text model) with the
    Idefics3 special tokens (``<fake_token_around_image>``, ``<image>``, ``<global-img>``, ``<row_i_col_j>``,
    ``<end_of_utterance>``) in a locally trained BPE tokenizer, the PIL Idefics3 image processor with image
    splitting (32 px tiles, longest edge 64: up to 2x2 tiles + the global image, 4 tokens each) and a
    SmolVLM-style chat template ("User:" / "Assistant:")."""
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessorPil,
        Idefics3Processor,
        Idefics3VisionConfig,
        LlamaConfig,
    )

    grid = [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]
    image = ["<fake_token_around_image>", "<image>", "<global-img>", "<end_of_utterance>", *grid]
    specials = ["<pad>", "<s>", "</s>", "<|im_start|>", *image]
    tokenizer = _train_tokenizer(specials, "<image>", ten_token=ten_token)
    image_processor = Idefics3ImageProcessorPil(
        size={"longest_edge": 64}, max_image_size={"longest_edge": 32}, do_image_splitting=True
    )
    processor = Idefics3Processor(
        image_processor=image_processor, tokenizer=tokenizer, image_seq_len=4, chat_template=SMOLVLM_TEMPLATE
    )
    config = Idefics3Config(
        vision_config=Idefics3VisionConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        text_config=LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            pad_token_id=tokenizer.pad_token_id,
            max_position_embeddings=1024,
        ),
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        scale_factor=2,  # (32 / 8) ** 2 patches / 2 ** 2 = 4 tokens per tile = image_seq_len
    )
    torch.manual_seed(seed)
    model = Idefics3ForConditionalGeneration(config).eval()
    sample = "<|im_start|>User:Rate the image.<end_of_utterance>\nAssistant:"
    _sharpen(model, tokenizer, sample + " ", space_first=sample)
    return _save(path, processor, model, config, safetensors)


BUILDERS = {"llava": build_tiny_vlm, "idefics3": build_tiny_idefics3}


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory) -> Path:
    return build_tiny_vlm(tmp_path_factory.mktemp("tiny-vlm"))


@pytest.fixture(scope="session")
def tiny_vlm_ten(tmp_path_factory) -> Path:
    return build_tiny_vlm(tmp_path_factory.mktemp("tiny-vlm-ten"), ten_token=True, seed=1)


@pytest.fixture(scope="session")
def tiny_idefics3(tmp_path_factory) -> Path:
    return build_tiny_idefics3(tmp_path_factory.mktemp("tiny-idefics3"))


@pytest.fixture(scope="session")
def tiny_idefics3_ten(tmp_path_factory) -> Path:
    return build_tiny_idefics3(tmp_path_factory.mktemp("tiny-idefics3-ten"), ten_token=True, seed=1)


@pytest.fixture(params=["llava", "idefics3"])
def any_vlm(request) -> tuple[str, Path]:
    """(architecture, checkpoint folder) for each tiny architecture."""
    fixture = {"llava": "tiny_vlm", "idefics3": "tiny_idefics3"}[request.param]
    return request.param, request.getfixturevalue(fixture)


@pytest.fixture(params=["llava", "idefics3"])
def any_vlm_ten(request) -> tuple[str, Path]:
    """(architecture, checkpoint folder) for each tiny architecture, with "10" as a single token."""
    fixture = {"llava": "tiny_vlm_ten", "idefics3": "tiny_idefics3_ten"}[request.param]
    return request.param, request.getfixturevalue(fixture)


# -- a fake OpenAI-compatible server ------------------------------------------------------------------------
Reply = tuple[int, Any, float]  # (HTTP status, body: dict | str | bytes, delay seconds)


def completion(content: str | None, *, refusal: str | None = None, finish: str = "stop", logprobs=None) -> dict:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "fake",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "finish_reason": finish,
                "logprobs": logprobs,
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


class FakeServer:
    """Speaks ``POST /v1/chat/completions``. ``script(request, n)`` -> (status, body, delay) decides each reply;
    every request (JSON body + headers) is recorded. At most ``limit`` requests are served."""

    def __init__(self, limit: int = 200) -> None:
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.script: Callable[[dict, int], Reply] = lambda req, n: (200, completion('{"explanation":"x","score":5}'), 0)
        self.limit = limit
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                req = json.loads(body)
                with server.lock:
                    n = len(server.requests)
                    server.requests.append(req)
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                if n >= server.limit:
                    status, payload, delay = 503, {"error": {"message": "test server request limit"}}, 0.0
                else:
                    status, payload, delay = server.script(req, n)
                time.sleep(delay)
                data = (
                    payload
                    if isinstance(payload, bytes)
                    else (payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
                )
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = FakeServer()
    try:
        yield s
    finally:
        s.close()
