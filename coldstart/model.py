"""The network: item/user embeddings (global) and an MLP decision head (adapted per user).

Dimension letters: I items in the catalogue, B users, N items scored per user, S support slots, H hidden width,
Di item-vector width, Du user-vector width, D embedding width, H width of the first hidden layer.

The head is written as a pure function of a dict of per-user parameters (leading dimension B), so that the inner
loop can adapt B users at once with batched matmuls and differentiate through the steps (see adapt.py).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import Config
from .features import PAD, EncodedFeatures, FeatureEncoder
from .priors import PEERS, Priors
from .tasks import ItemSet

Params = dict[str, torch.Tensor]

USER_SHRINKAGE = 10.0  # starting pseudo-count of the user offset ("rating"), as in baselines.ItemMeanOffset
GATE_INPUTS = 6  # what the gate reads of a task (`task_summary`)
GATE_WIDTH = 16
GATE_SCALE = 4.0  # the gate's output is this times its last layer's: a weight can reach a few units in a fit's
#                   Adam steps
GATE_START = {"implicit": 0.25, "rating": 0.0}  # each channel's starting weight over GATE_SCALE (implicit: 1)


class FeatureEmbedding(nn.Module):
    """Embeds encoded features: one embedding per token field (mean over a row's tokens), one linear map of the
    numeric fields; the pieces are concatenated."""

    def __init__(self, encoder: FeatureEncoder, dim: int):
        super().__init__()
        self.tables = nn.ModuleList(nn.Embedding(f.n_tokens, dim, padding_idx=PAD) for f in encoder.token_fields)
        n_numeric = len(encoder.numeric_fields)
        self.numeric = nn.Linear(n_numeric, dim) if n_numeric else None
        self.out_dim = dim * (len(self.tables) + (1 if n_numeric else 0))

    def forward(self, feats: EncodedFeatures) -> torch.Tensor:
        parts = []
        for table, tokens in zip(self.tables, feats.tokens):  # tokens (N, T)
            weight = (tokens != PAD).float()  # (N, T)
            summed = (table(tokens) * weight.unsqueeze(-1)).sum(1)  # (N, D)
            parts.append(summed / weight.sum(1, keepdim=True).clamp(min=1.0))
        if self.numeric is not None:
            parts.append(self.numeric(feats.numeric))  # (N, D)
        if not parts:
            return feats.numeric.new_zeros((feats.numeric.shape[0], 0))
        return torch.cat(parts, dim=1)


class ColdStartNet(nn.Module):
    """MeLU-style network. score(u, i) = mlp_u(W_item item_vec(i) + W_user,u user_vec(u) + b_u) + exp(s_u) bias(i)
    + sum_c mix_u,c prior_c(u, i) (+ global mean + offset(u) with objective "rating", where offset(u) is the user's
    shrunk mean residual over its support ratings, as in the item-mean-with-offset baseline; its pseudo-count is
    meta-learned). The priors (priors.py) are what a new user would get anyway; a small gate reads the task and gives
    each user's starting weights mix_u and the size of its inner steps.

    The first layer is split into an item side W_item, shared by every user (so the catalogue's projection is
    computed once and reused by all users: scoring costs B x I x H x H2, not B x I x (Di + Du) x H), and a user side
    W_user with the bias b, adapted per user with the later layers. s_u, the log of the user's scale of the item
    bias, is 0 before adaptation; the scale stays positive, so no number of steps turns a user's popularity prior
    upside down.
    """

    def __init__(self, n_items: int, item_encoder: FeatureEncoder, user_encoder: FeatureEncoder,
                 item_feats: EncodedFeatures, config: Config, global_mean: float = 0.0,
                 rating_center: float = 0.0, rating_spread: float = 1.0):
        super().__init__()
        d = config.embedding_dim
        self.config = config
        self.item_features = FeatureEmbedding(item_encoder, d)
        use_ids = config.uses_item_ids(has_item_features=self.item_features.out_dim > 0)
        self.item_ids = nn.Embedding(n_items, d) if use_ids else None
        self.user_features = FeatureEmbedding(user_encoder, d)
        self.item_bias = nn.Parameter(torch.zeros(n_items))
        self.register_buffer("global_mean", torch.tensor(float(global_mean)))  # score offset ("rating")
        self.register_buffer("rating_center", torch.tensor(float(rating_center)))  # for support pooling
        self.register_buffer("rating_spread", torch.tensor(float(rating_spread)))
        for j, tokens in enumerate(item_feats.tokens):
            self.register_buffer(f"item_tokens_{j}", tokens)
        self.register_buffer("item_numeric", item_feats.numeric)
        self.item_dim = self.item_features.out_dim + (d if self.item_ids is not None else 0)
        self.user_dim = self.user_features.out_dim + (2 * self.item_dim if config.pool_support else 0)
        if self.item_dim == 0:
            raise ValueError("the model needs item ids or item features (config use_item_ids=False and no features)")
        widths = [config.hidden[0], *config.hidden[1:], 1]
        self.item_weight = nn.Parameter(torch.empty(widths[0], self.item_dim))  # (H, Di): shared by all users
        self.head = nn.ParameterDict({"w0": nn.Parameter(torch.empty(widths[0], self.user_dim)),  # (H, Du)
                                      "b0": nn.Parameter(torch.zeros(widths[0]))})
        for j, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:]), start=1):
            self.head[f"w{j}"] = nn.Parameter(torch.empty(fan_out, fan_in))
            self.head[f"b{j}"] = nn.Parameter(torch.zeros(fan_out))
        self.n_layers = len(widths)
        self.priors, self.gate = None, None
        if config.prior_channels():  # the priors' tables (filled by fit) and the gate weighing them per user
            self.priors = Priors(n_items, user_encoder)
            self.gate = nn.Sequential(nn.Linear(GATE_INPUTS, GATE_WIDTH), nn.ReLU(),
                                      nn.Linear(GATE_WIDTH, len(self.priors.enabled) + 1))  # + the step size
        if config.objective == "rating":  # pseudo-count of the closed-form user offset, learned in log space
            self.log_user_shrinkage = nn.Parameter(torch.tensor(math.log(USER_SHRINKAGE)))
        self._own_modules = {n.split(".")[0] for n, _ in self.named_parameters()}  # not a learner's (attach)

    def reset_parameters(self, generator: torch.Generator) -> None:
        """Seeded initialisation (no global RNG) of the net's own parameters: N(0, 0.1) embeddings, Kaiming-uniform
        layers, zero biases. A learner's own parameters (added after these, by `Learner.attach`) are left to
        `Learner.reset`, which goes on with the same generator."""
        own = [(n, p) for n, p in self.named_parameters() if n.split(".")[0] in self._own_modules]
        with torch.no_grad():
            for name, p in own:
                if name == "gate.2.weight":  # the gate starts at the same weight for every user
                    p.zero_()
                elif name == "gate.2.bias":
                    p.fill_(GATE_START[self.config.objective])
                    p[-1] = 0.0  # the step size's: 2 sigmoid(0) = 1, the configured inner_lr
                elif name.startswith("head.w") or name == "item_weight":
                    fan_in = self.item_dim + self.user_dim if name in ("head.w0", "item_weight") else p.shape[1]
                    bound = math.sqrt(6.0 / fan_in)
                    p.copy_(torch.rand(p.shape, generator=generator) * 2 * bound - bound)
                elif name.startswith("head.b") or name == "item_bias" or name.endswith(".bias"):
                    p.zero_()
                elif name == "log_user_shrinkage":
                    p.fill_(math.log(USER_SHRINKAGE))
                else:
                    p.copy_(torch.randn(p.shape, generator=generator) * 0.1)
                    if "tables" in name:
                        p[PAD] = 0.0

    def start_from_prior(self, item_bias: torch.Tensor) -> None:
        """Start at a simple model: item biases from the data (log popularity, or shrunk item offsets for ratings)
        and a zero output layer, so that the untrained network scores exactly as that baseline does."""
        last = self.n_layers - 1
        with torch.no_grad():
            self.item_bias.copy_(item_bias)
            self.head[f"w{last}"].zero_()
            self.head[f"b{last}"].zero_()

    # --- global part (shared by all users) -------------------------------------------------------------------
    def item_vectors(self) -> torch.Tensor:
        """(I, Di) the vector of every item in the catalogue."""
        tokens = [getattr(self, f"item_tokens_{j}") for j in range(len(self.item_features.tables))]
        parts = [self.item_features(EncodedFeatures(tokens, self.item_numeric))]
        if self.item_ids is not None:
            parts.insert(0, self.item_ids.weight)
        return torch.cat(parts, dim=1)

    def item_projection(self, item_vecs: torch.Tensor) -> torch.Tensor:
        """(I, H) the item side of the first layer, for every item: computed once, shared by every user."""
        return item_vecs @ self.item_weight.T

    def user_vectors(self, user_feats: EncodedFeatures, item_vecs: torch.Tensor, support: ItemSet) -> torch.Tensor:
        """(B, Du) user features, plus (with pool_support) the mean vector of the support items and their mean
        weighted by the centred rating."""
        parts = [self.user_features(user_feats)]  # (B, Du_f)
        if self.config.pool_support:
            mask = support.mask.float()  # (B, S)
            count = mask.sum(1, keepdim=True).clamp(min=1.0)  # (B, 1)
            vecs = item_vecs[support.items] * mask.unsqueeze(-1)  # (B, S, Di)
            centred = (support.ratings - self.rating_center) / self.rating_spread * mask  # (B, S)
            parts.append(vecs.sum(1) / count)  # (B, Di)
            parts.append((vecs * centred.unsqueeze(-1)).sum(1) / count)  # (B, Di)
        return torch.cat(parts, dim=1)

    # --- local part (adapted per user) -----------------------------------------------------------------------
    def local_names(self) -> list[str]:
        """Names of the parameters the inner loop adapts: the decision layers, the user vector and (for "implicit")
        the user's scale of the item bias; never an empty tensor (no user vector, nothing of it)."""
        head = [f"{p}{j}" for j in range(self.n_layers) for p in ("w", "b")]
        names = head + ["user"] + (["log_bias_scale"] if self.config.uses_bias_scale() else [])
        names += ["mix"] if self.gate is not None else []
        return [n for n in names if not (self.user_dim == 0 and n in ("w0", "user"))]

    def user_offsets(self, support: ItemSet) -> torch.Tensor:
        """(B,) with objective "rating": each user's support residuals r - global mean - item bias, summed and
        divided by (count + learned pseudo-count); zeros otherwise (an offset does not change a ranking)."""
        if self.config.objective != "rating":
            return support.ratings.new_zeros(support.ratings.shape[0])
        mask = support.mask.float()  # (B, S)
        residual = (support.ratings - self.global_mean - self.item_bias[support.items]) * mask  # (B, S)
        return residual.sum(1) / (mask.sum(1) + self.log_user_shrinkage.exp())

    def user_params(self, user_feats: EncodedFeatures, item_vecs: torch.Tensor, support: ItemSet,
                    times: torch.Tensor | None = None) -> Params:
        """Each user's starting point for the inner loop (leading dimension B), still connected to the
        initialisation: copies of the head, the user vector (B, Du), the score offset (B,) and the log scale of
        the item bias (B,), which starts at 0 for every user (a leaf, adapted when config.uses_bias_scale()).
        With priors: their channels (B, C, I), read as of `times` (B,) (None: the end of the log), the gate's
        weight of each (B, C), adapted with the head, and the gate's multiplier of the user's inner step size (B,):
        how far the support may move this user from the prior."""
        user_vecs = self.user_vectors(user_feats, item_vecs, support)
        b = user_vecs.shape[0]
        params = {name: p.unsqueeze(0).expand(b, *p.shape) for name, p in self.head.items()}  # (B, ...)
        params["user"] = user_vecs  # (B, Du)
        params["offset"] = self.user_offsets(support)  # (B,)
        params["log_bias_scale"] = user_vecs.new_zeros(b).requires_grad_(self.config.uses_bias_scale())  # (B,)
        if self.priors is not None:
            context = self.priors.channels(user_feats, support, times)  # (B, C, I)
            params["context"] = context
            gate = self.gate(self.task_summary(support, context))  # (B, C + 1)
            params["mix"] = GATE_SCALE * gate[:, :-1]  # (B, C)
            params["step"] = 2.0 * torch.sigmoid(GATE_SCALE * gate[:, -1])  # (B,) in (0, 2): times inner_lr
        return params

    def task_summary(self, support: ItemSet, context: torch.Tensor) -> torch.Tensor:
        """(B, GATE_INPUTS) what the gate reads of each task: log(1 + shots), no shots at all, the mean and spread of
        the centred support ratings, whether the peers channel holds anything (user features), and the mean
        popularity in the shortest recent window (as the channel scales it) of the support items (how mainstream
        the user is)."""
        mask = support.mask.float()  # (B, S)
        count = mask.sum(1)  # (B,)
        centred = (support.ratings - self.rating_center) / self.rating_spread * mask  # (B, S)
        mean = centred.sum(1) / count.clamp(min=1.0)  # (B,)
        spread = (((centred - mean.unsqueeze(1)) * mask).pow(2).sum(1) / count.clamp(min=1.0)).sqrt()  # (B,)
        has_peers = (context[:, PEERS].abs().sum(1) > 0).float()  # (B,)
        mainstream = (context[:, 0].gather(1, support.items) * mask).sum(1) / count.clamp(min=1.0)  # (B,)
        return torch.stack([count.log1p(), (count == 0).float(), mean, spread, has_peers, mainstream], dim=1)

    def scores(self, params: Params, proj: torch.Tensor, items: torch.Tensor | None) -> torch.Tensor:
        """(B, N) scores for each user of its own `items` (B, N), of items shared by all users (N,), or of the whole
        catalogue when `items` is None (N = I). `proj` is `item_projection`'s (I, H)."""
        x = proj if items is None else proj[items]  # (I, H), (N, H) or (B, N, H)
        bias = self.item_bias if items is None else self.item_bias[items]  # (I,), (N,) or (B, N)
        return self.scores_of(params, x, bias, self.context_of(params, items))

    def score_slice(self, params: Params, proj: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """(B, stop - start) scores of the catalogue's items start..stop-1 (`proj` is the (I, H) projection)."""
        context = params["context"][:, :, start:stop] if "context" in params else None
        return self.scores_of(params, proj[start:stop], self.item_bias[start:stop], context)

    @staticmethod
    def context_of(params: Params, items: torch.Tensor | None) -> torch.Tensor | None:
        """(B, C, N) the priors' channels of `items` (None, (N,) or (B, N)); None without priors."""
        if "context" not in params or items is None:
            return params.get("context")
        context = params["context"]  # (B, C, I)
        if items.dim() == 1:
            return context[:, :, items]
        return context.gather(2, items.unsqueeze(1).expand(-1, context.shape[1], -1))

    def scores_of(self, params: Params, x: torch.Tensor, bias: torch.Tensor,
                  context: torch.Tensor | None = None) -> torch.Tensor:
        """(B, N) scores of items given by their projections `x` ((N, H) shared, or (B, N, H)), biases and the
        priors' channels (B, C, N), weighed by the user's "mix" (B, C)."""
        user = torch.bmm(params["user"].unsqueeze(1), params["w0"].transpose(1, 2))  # (B, 1, H)
        h = x + (user + params["b0"].unsqueeze(1))  # (B, N, H)
        for j in range(1, self.n_layers):  # (in place when nothing needs the pre-activation: scoring)
            h = F.relu(h, inplace=not torch.is_grad_enabled())
            h = torch.baddbmm(params[f"b{j}"].unsqueeze(1), h, params[f"w{j}"].transpose(1, 2))
        out = h.squeeze(-1)  # (B, N)
        bias = bias * params["log_bias_scale"].exp().unsqueeze(1)  # (B, N): the user's own scale
        if context is not None:
            out = out + torch.einsum("bc,bcn->bn", params["mix"], context)  # (B, N)
        return out + bias + self.global_mean + params["offset"].unsqueeze(1)
