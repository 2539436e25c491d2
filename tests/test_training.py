import numpy as np
import pytest
import torch

from mmlearn import training


def test_array_batches_cover_every_row_once_per_epoch():
    x = np.arange(10)
    batches = training.ArrayBatches(x, x * 2, batch_size=4, seed=0)
    assert len(batches) == 3
    seen = torch.cat([b[0] for b in batches])
    assert sorted(seen.tolist()) == list(range(10))
    assert all(torch.equal(b[1], b[0] * 2) for b in batches)
    first, second = [b[0].tolist() for b in batches], [b[0].tolist() for b in batches]
    assert first != second  # reshuffled


def test_array_batches_reject_mismatched_rows():
    with pytest.raises(ValueError, match="same number of rows"):
        training.ArrayBatches(np.zeros(3), np.zeros(4), batch_size=2)


def test_fit_learns_a_linear_rule_and_reports_history():
    torch.manual_seed(0)
    x = torch.randn(256, 2)
    y = (x[:, 0] > x[:, 1]).long()
    model = torch.nn.Linear(2, 2)

    def loss_fn(m, batch):
        return torch.nn.functional.cross_entropy(m(batch[0]), batch[1])

    def evaluate(m):
        return {"accuracy": (m(x).argmax(1) == y).float().mean().item()}

    history = training.fit(model, training.ArrayBatches(x, y, batch_size=32), loss_fn, epochs=20,
                           lr=0.05, evaluate=evaluate, device=torch.device("cpu"), verbose=False)
    assert history["loss"][-1] < history["loss"][0]
    assert history["accuracy"][-1] > 0.95
    assert len(history["seconds"]) == 20


def test_predict_matches_a_direct_call():
    model = torch.nn.Linear(3, 2)
    x = torch.randn(10, 3)
    out = training.predict(model, x, batch_size=4, device=torch.device("cpu"))
    torch.testing.assert_close(out, model(x).detach())


def test_fit_logs_the_size_weighted_mean_loss_of_the_epoch():
    torch.manual_seed(0)
    x, y = torch.randn(70, 3), torch.randint(0, 2, (70,))  # batches of 32, 32 and 6
    model = torch.nn.Linear(3, 2)
    expected = torch.nn.functional.cross_entropy(model(x), y).item()

    def loss_fn(m, batch):
        return torch.nn.functional.cross_entropy(m(batch[0]), batch[1]).reshape(1)  # (1,) is fine too

    frozen = torch.optim.SGD(model.parameters(), lr=0.0)
    history = training.fit(model, training.ArrayBatches(x, y, batch_size=32), loss_fn, epochs=2,
                           optimizer=frozen, device=torch.device("cpu"), verbose=False)
    assert history["loss"] == pytest.approx([expected, expected], rel=1e-6)


def test_array_batches_are_copies_in_order_without_shuffle():
    x = torch.arange(10.0)
    batches = list(training.ArrayBatches(x, batch_size=4, shuffle=False))
    assert [b[0].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    batches[0][0].zero_()  # a batch is the loop's to change, not a view of the data
    assert x.tolist() == list(range(10))


def test_one_cycle_adamw_warms_up_then_anneals_with_each_step():
    model = torch.nn.Linear(3, 1)
    frozen = torch.nn.Linear(3, 1).requires_grad_(False)
    optimizer = training.one_cycle_adamw(torch.nn.Sequential(model, frozen), lr=0.1, total_steps=20)
    assert sum(len(g["params"]) for g in optimizer.param_groups) == 2   # the frozen layer is left out
    rates = []
    for _ in range(20):
        rates.append(optimizer.param_groups[0]["lr"])
        model(torch.ones(1, 3)).sum().backward()
        optimizer.step()
    peak = int(np.argmax(rates))
    assert rates[0] < 0.01 and rates[peak] == pytest.approx(0.1, rel=0.05) and 1 <= peak <= 4
    assert rates[-1] < 0.01 and all(a >= b for a, b in zip(rates[peak:], rates[peak + 1:]))
    with pytest.raises(ValueError, match="total_steps"):
        training.one_cycle_adamw(model, lr=0.1, total_steps=0)


@pytest.mark.parametrize("setting, bar_shown", [("1", True), ("0", False)])
def test_fit_shows_a_progress_bar_beside_its_epoch_lines_unless_turned_off(monkeypatch, capsys, setting, bar_shown):
    monkeypatch.setenv("MMLEARN_PROGRESS", setting)
    x, y = torch.randn(64, 2), torch.randn(64, 1)
    training.fit(torch.nn.Linear(2, 1), training.ArrayBatches(x, y, batch_size=8),
                 lambda m, batch: ((m(batch[0]) - batch[1]) ** 2).mean(), epochs=2, device=torch.device("cpu"))
    out, err = capsys.readouterr()
    assert [line[:11] for line in out.splitlines()] == ["epoch   1/2", "epoch   2/2"]
    assert ("epoch 2/2:" in err and "/8 [" in err) == bar_shown
    assert bar_shown or err == ""


def test_fit_keeps_the_weights_of_the_best_epoch(capsys, monkeypatch):
    monkeypatch.setenv("MMLEARN_PROGRESS", "0")
    torch.manual_seed(0)
    x = torch.randn(64, 2)
    model = torch.nn.Linear(2, 1)
    weights_after = []
    scores = iter([3.0, 1.0, 2.0, 1.0])  # lowest first at epoch 2; the tie at epoch 4 does not replace it

    def evaluate(m):
        weights_after.append(m.weight.detach().clone())
        return {"val_loss": next(scores)}

    history = training.fit(model, training.ArrayBatches(x, x[:, :1], batch_size=16),
                           lambda m, b: (m(b[0]) - b[1]).pow(2).mean(), epochs=4, lr=0.1,
                           evaluate=evaluate, keep_best="val_loss", device=torch.device("cpu"), verbose=True)
    assert history["best_epoch"] == [2]
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and "val_loss 1.0000" in lines[1] and "best_epoch" not in "".join(lines)
    assert not torch.equal(weights_after[1], weights_after[3])  # training went on after epoch 2
    torch.testing.assert_close(model.weight, weights_after[1])


def test_fit_says_what_keep_best_needs():
    model, batches = torch.nn.Linear(2, 1), training.ArrayBatches(torch.randn(8, 2), torch.randn(8, 1), batch_size=4)
    loss_fn = lambda m, b: (m(b[0]) - b[1]).pow(2).mean()
    with pytest.raises(ValueError, match="needs evaluate"):
        training.fit(model, batches, loss_fn, epochs=1, keep_best="val_loss", verbose=False)
    with pytest.raises(ValueError, match="not among what evaluate returned: val_l1"):
        training.fit(model, batches, loss_fn, epochs=1, evaluate=lambda m: {"val_l1": 1.0},
                     keep_best="val_loss", verbose=False)


def test_evaluate_loss_draws_the_same_noise_each_call_and_leaves_the_global_state_alone():
    model = torch.nn.Linear(2, 1)
    batches = training.ArrayBatches(torch.randn(70, 2), batch_size=32, shuffle=False)  # 32, 32, 6 rows
    noisy = lambda m, b: (m(b[0]) + torch.randn(len(b[0]), 1)).pow(2).mean()
    torch.manual_seed(5)
    first = training.evaluate_loss(model, batches, noisy, device=torch.device("cpu"))
    after = torch.rand(3)
    torch.manual_seed(5)
    assert training.evaluate_loss(model, batches, noisy, device=torch.device("cpu")) == first
    torch.testing.assert_close(torch.rand(3), after)  # the global generator went on as if not called
    assert training.evaluate_loss(model, batches, noisy, seed=1, device=torch.device("cpu")) != first
    plain = lambda m, b: m(b[0]).pow(2).mean()
    expected = model(batches.tensors[0]).pow(2).mean().item()
    assert training.evaluate_loss(model, batches, plain, device=torch.device("cpu")) == pytest.approx(expected)
