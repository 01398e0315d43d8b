"""Thermal parsing, the cooldown gate and the background sampler."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from harness.devices.base import ThermalSample
from harness.thermal import sysfs
from harness.thermal.sampler import ThermalSampler, hottest_cpu_c, wait_for_cooldown


def test_sysfs_values_are_converted_to_celsius_and_khz():
    zones = sysfs.zone_samples([("thermal_zone3", "cpu-1-0\n", "48500\n"), ("thermal_zone9", "battery", "31\n"),
                                ("thermal_zone4", "gpu", "not-a-number")])
    assert [(s.sensor, s.value) for s in zones] == [("cpu-1-0 (thermal_zone3)", 48.5), ("battery (thermal_zone9)", 31.0)]
    (freq,) = sysfs.freq_samples([("cpu4", "2419200\n")])
    assert (freq.sensor, freq.value, freq.unit) == ("cpu4.freq", 2419200.0, "kHz")


def test_hottest_cpu_prefers_cpu_sensors():
    readings = [ThermalSample(0, "battery", "temp", 60.0, "C"), ThermalSample(0, "cpu-0-0 (z1)", "temp", 41.0, "C"),
                ThermalSample(0, "cpu-1-2 (z5)", "temp", 47.5, "C")]
    assert hottest_cpu_c(readings) == 47.5
    assert hottest_cpu_c([]) is None


def test_grep_output_keeps_every_value_on_its_own_file():
    # `grep -s -H . FILE...` as toybox prints it on a Qualcomm phone: zone 2 is switched off (its temp read fails
    # and -s drops it), cpu7 is offline.  With `cat`, zone 3's type would have been paired with zone 2's temp.
    text = ("/sys/class/thermal/thermal_zone0/type:cpu-0-0\n/sys/class/thermal/thermal_zone0/temp:41200\n"
            "/sys/class/thermal/thermal_zone2/type:disabled-0\n"
            "/sys/class/thermal/thermal_zone3/type:gpuss-0\n/sys/class/thermal/thermal_zone3/temp:38000\n"
            "/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq:1785600\n")
    samples = sysfs.tagged_samples(text)
    assert [(s.sensor, s.value) for s in samples] == [
        ("cpu-0-0 (thermal_zone0)", 41.2), ("gpuss-0 (thermal_zone3)", 38.0), ("cpu0.freq", 1785600.0)]


def test_a_cpufreq_policy_is_read_as_its_first_cpu():
    # /sys/devices/system/cpu/cpufreq/policyN names a cluster by its first CPU: policy5 is cpu5's clock, under the
    # same sensor name as when cpu5/cpufreq was read (a history keeps one series per cluster).
    text = ("/sys/devices/system/cpu/cpufreq/policy5/scaling_cur_freq:2956800\n"
            "/sys/devices/system/cpu/cpufreq/policy7/scaling_cur_freq:3302400\n")
    assert [(s.sensor, s.value) for s in sysfs.tagged_samples(text)] == [("cpu5.freq", 2956800.0),
                                                                        ("cpu7.freq", 3302400.0)]


def test_battery_state_of_charge_zones_are_never_the_hottest_cpu():
    # Qualcomm's "soc" zone is the battery's state of charge in percent: 87 must not read as 87 C.
    readings = [ThermalSample(0, "soc (thermal_zone2)", "temp", 87.0, "C"),
                ThermalSample(0, "ibat-lvl0 (thermal_zone40)", "temp", 95.0, "C"),
                ThermalSample(0, "cpu-1-0 (thermal_zone1)", "temp", 44.0, "C"),
                ThermalSample(0, "soc_dts0 (thermal_zone7)", "temp", 46.0, "C")]
    assert hottest_cpu_c(readings) == 46.0
    assert hottest_cpu_c(readings[:2]) is None  # only battery zones: no chip temperature at all


class CoolingPhone:
    """A device stand-in whose CPU cools by 2 C per poll: only the gate's logic is under test here."""

    def __init__(self, start_c):
        self.temp_c = start_c

    def sample_thermals(self):
        reading = [ThermalSample(0, "cpu-0-0 (z0)", "temp", self.temp_c, "C")]
        self.temp_c -= 2
        return reading


def test_cooldown_waits_until_below_the_limit():
    now = [0.0]
    result = wait_for_cooldown(CoolingPhone(50), max_temp_c=45, timeout_s=60, poll_s=5,
                               sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0])
    # 50 -> 48 -> 46 -> 44: three polls of 5 s each.
    assert result.reached and result.waited_s == 15 and result.end_temp_c == 44


def test_cooldown_gives_up_at_its_time_limit():
    now = [0.0]
    result = wait_for_cooldown(CoolingPhone(90), max_temp_c=45, timeout_s=10, poll_s=5,
                               sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0])
    assert not result.reached and "still" in result.note and result.waited_s >= 10


def test_cooldown_without_sensors_is_skipped_and_says_so():
    class NoSensors:
        def sample_thermals(self):
            return []

    result = wait_for_cooldown(NoSensors(), 45, 60, 1)
    assert result.reached and result.waited_s == 0 and "no temperature sensors" in result.note


def test_sampler_records_a_time_series_and_survives_a_failing_read():
    phone = CoolingPhone(40)
    with ThermalSampler(phone, period_s=0.05) as sampler:
        time.sleep(0.3)
    times = [s.t_s for s in sampler.samples]
    assert len(times) >= 4 and times == sorted(times)

    class Broken:
        def sample_thermals(self):
            raise OSError("device gone")

    with ThermalSampler(Broken(), period_s=0.05) as broken:
        time.sleep(0.1)
    assert broken.samples == [] and "device gone" in broken.error


def test_throttling_is_detected_from_status_or_falling_clocks():
    from harness.thermal.sampler import throttled

    calm = [ThermalSample(t, "cpu4.freq", "freq", f, "kHz") for t, f in enumerate([1.0e6, 2.4e6, 2.4e6, 2.3e6])]
    assert throttled(calm) == (False, "")  # ramping up and a 4% wobble are not throttling
    fell = calm + [ThermalSample(5, "cpu4.freq", "freq", 1.6e6, "kHz")]
    hot, why = throttled(fell)
    assert hot and "cpu4.freq fell 33%" in why
    status = [ThermalSample(0, "thermalservice", "status", 0, "level"), ThermalSample(1, "thermalservice", "status", 2, "level")]
    assert throttled(status)[0] and "level 2" in throttled(status)[1]


def test_every_cell_on_a_hot_phone_gets_the_thermal_status_however_short():
    """Android asks dumpsys for the thermal status only every Nth reading; a cell of two readings (start and
    end) could miss it and a phone at thermal status 3 would not mark the cell as throttled."""
    from types import SimpleNamespace

    from harness.devices.android import Device
    from harness.thermal.sampler import throttled

    phone = Device.__new__(Device)  # the real sampling logic, with the phone's answers stubbed
    phone._sysfs_readings = lambda: [ThermalSample(0.0, "cpu7.freq", "freq", 1_000_000.0, "kHz")]
    phone.thermal_status = lambda: 3
    phone.run = lambda argv, timeout_s: SimpleNamespace(stdout="")
    for cell in range(Device.DUMPSYS_EVERY + 1):
        with ThermalSampler(phone, period_s=60) as sampler:
            pass  # a cell shorter than one sampling period: two readings
        assert len(sampler.samples) >= 2
        assert throttled(sampler.samples)[0], f"cell {cell} on a phone at status 3 was not flagged"


def test_battery_power_is_read_the_same_whatever_the_gauges_sign_and_not_read_while_charging():
    """Fuel gauges report a discharging battery's current_now as negative (the kernel's documented way) or as
    positive: a reader of the sign would see one phone's draw as negative.  While charging, the battery's current
    says nothing about the phone's draw: it is marked, not read."""
    from harness.thermal.energy import NOT_DISCHARGING, POWER, RunWork, battery_samples, run_energy

    def grep(status, current_ua):
        return (f"/sys/class/power_supply/battery/status:{status}\n/sys/class/power_supply/battery/current_now:"
                f"{current_ua}\n/sys/class/power_supply/battery/voltage_now:4000000\n")

    negative, positive = battery_samples(grep("Discharging", -500000)), battery_samples(grep("Discharging", 500000))
    assert [(s.kind, s.value) for s in negative] == [(POWER, 2000.0)] == [(s.kind, s.value) for s in positive]
    (charging,) = battery_samples(grep("Charging", 1500000))
    assert charging.kind == NOT_DISCHARGING
    assert battery_samples("/sys/class/thermal/thermal_zone0/temp:41000\n") == []  # no battery files: nothing
    # 1 W above an idle 0.5 W for 2 s over 4 inferences: 500 mJ each.
    idle = battery_samples(grep("Discharging", -125000))
    series = [replace(s, t_s=t) for t in (0.0, 1.0) for s in battery_samples(grep("Discharging", -375000))]
    series.append(replace(idle[0], t_s=2.0))  # the reading after the runner ended
    four = RunWork("inference", 4)  # no iteration times: the whole run's figure
    assert run_energy(idle, series, four).mj_per_unit == pytest.approx(500.0)
    assert run_energy(idle, [replace(charging, t_s=1.0), *series], four).text == "energy not measured: charging"


def _battery_grep(status: str, current_ua: int) -> str:
    return (f"/sys/class/power_supply/battery/status:{status}\n/sys/class/power_supply/battery/current_now:"
            f"{current_ua}\n/sys/class/power_supply/battery/voltage_now:4000000\n")


def _draw(sign: int, mw: float, t_s: float):
    """One discharging reading of ``mw`` at ``t_s`` from a gauge with this sign convention (4 V: mW / 4 = mA)."""
    from harness.thermal.energy import battery_samples

    (reading,) = battery_samples(_battery_grep("Discharging", sign * int(mw / 4 * 1000)))
    return replace(reading, t_s=t_s)


@pytest.mark.parametrize("sign", [-1, +1])
def test_energy_per_inference_covers_the_measured_loop_not_the_heavy_load_before_it(sign):
    """A phone's runner loads (heavy), warms up, then runs its measured iterations and exits: the energy was the whole
    process's (load included, 823 mJ here) where the measured inferences cost 200 mJ each.  Worked by hand: idle
    500 mW; readings every 0.5 s, 3000 mW through the load (0-2.5 s), 1500 mW through the measured loop (3.0-4.5 s),
    and one after the runner returned at 5.0 s.  The loop: 10 iterations summing 2.0 s, so the window is 3.0-5.0 s,
    4 readings of 1500 mW: (1500 - 500) mW x 2.0 s / 10 = 200 mJ per inference."""
    from harness.thermal.energy import MEASURED_LOOP, WHOLE_RUN, RunWork, run_energy

    idle = [_draw(sign, 500, 0.0), _draw(sign, 500, 0.0)]
    series = ([_draw(sign, 3000, t / 2) for t in range(6)] + [_draw(sign, 1500, t / 2) for t in range(6, 10)]
              + [_draw(sign, 500, 5.2)])
    loop = run_energy(idle, series, RunWork("inference", 12, measured_units=10, measured_s=2.0), ended_s=5.0)
    assert (loop.span, loop.readings, loop.units) == (MEASURED_LOOP, 4, 10)
    assert loop.mj_per_unit == pytest.approx(200.0) and loop.active_mw == pytest.approx(1500.0)
    assert loop.text == "200 mJ/inference"
    # A 0.6 s loop holds one reading (4.5 s): the whole run stands in, and says so.  Every reading before the last,
    # (6 x 3000 + 4 x 1500) / 10 = 2400 mW, above idle for the 5.2 s run, over its 12 inferences (2 warm-ups):
    # 1900 x 5.2 / 12 = 823.33 mJ.
    short = run_energy(idle, series, RunWork("inference", 12, measured_units=10, measured_s=0.6), ended_s=5.0)
    assert (short.span, short.readings) == (WHOLE_RUN, 10)
    assert short.mj_per_unit == pytest.approx(1900 * 5.2 / 12)
    assert short.span_why == "1 battery reading in the 0.6 s measured loop (at least 2 needed)"
    assert short.text == "823 mJ/inference (whole run)"
    # Without ended_s the runner's end is the last reading's time (5.2 s): window 3.2-5.2 s, 3 readings of 1500 mW.
    late = run_energy(idle, series, RunWork("inference", 12, measured_units=10, measured_s=2.0))
    assert (late.span, late.readings, late.mj_per_unit) == (MEASURED_LOOP, 3, pytest.approx(200.0))
    # A runner whose measured work is not one stretch (a process per utterance): the whole run, and why.
    apart = run_energy(idle, series, RunWork("utterance", 12, not_one_stretch="each utterance is a process"))
    assert (apart.span, apart.span_why, apart.units) == (WHOLE_RUN, "each utterance is a process", 12)


def test_a_cells_energy_says_when_its_median_leaves_runs_out():
    """A run with no draw above idle is left out of the cell's median; the figure said so nowhere (the report showed
    the median of one run of two as the cell's energy)."""
    from harness.thermal.energy import MEASURED_LOOP, RunEnergy, cell_energy

    measured = RunEnergy(2.0, "inference", idle_mw=500.0, active_mw=900.0, units=10, span=MEASURED_LOOP)
    silent = RunEnergy(None, "inference", not_measured="no draw above idle")
    assert cell_energy([measured, silent]).text == "2 mJ/inference (1 of 2 runs)"
    assert cell_energy([measured, measured]).text == "2 mJ/inference"
    assert cell_energy([silent]).text == "energy not measured: no draw above idle"


def test_a_cell_none_of_whose_runs_measured_energy_counts_0_of_the_runs_that_tried():
    """The cells export read energy_runs 1 of energy_runs_tried 1 for a cell whose 2 runs both failed to measure:
    the first run's record stood for the cell, with its own defaults."""
    from harness.thermal.energy import RunEnergy, cell_energy

    silent = RunEnergy(None, "inference", not_measured="no draw above idle")
    cell = cell_energy([silent, silent])
    assert (cell.runs, cell.runs_tried, cell.not_measured) == (0, 2, "no draw above idle")


def test_a_cells_energy_never_mixes_a_whole_run_figure_into_its_measured_loop_median():
    """A run whose short loop held too few readings falls back to its whole run (load included): a median of the two
    spans would be neither.  The cell's figure is its measured-loop runs' median, and says it left one out."""
    from harness.thermal.energy import MEASURED_LOOP, RunEnergy, cell_energy

    loop = [RunEnergy(v, "inference", idle_mw=500.0, active_mw=900.0, units=10, span=MEASURED_LOOP) for v in (2.0, 4.0)]
    whole = RunEnergy(50.0, "inference", idle_mw=500.0, active_mw=2000.0, units=12, span_why="1 battery reading")
    cell = cell_energy([*loop, whole])
    assert (cell.mj_per_unit, cell.span, cell.text) == (3.0, MEASURED_LOOP, "3 mJ/inference (2 of 3 runs)")
    assert cell_energy([whole, whole]).text == "50 mJ/inference (whole run)"

def test_a_run_shorter_than_the_sampling_period_says_too_few_readings_not_no_draw():
    """A 0.5 s run sampled every 1 s holds one reading before the runner returned, taken as it started (the phone
    still idle): it was reported as "no draw above idle", which reads as a finding about the build."""
    from harness.thermal.energy import RunWork, run_energy

    idle = [_draw(-1, 500, 0.0), _draw(-1, 500, 0.0)]
    series = [_draw(-1, 500, 0.0), _draw(-1, 500, 0.6)]  # at the runner's start, and after it returned
    work = RunWork("inference", 6, measured_units=5, measured_s=0.2)
    energy = run_energy(idle, series, work, ended_s=0.5, period_s=1.0)
    assert energy.mj_per_unit is None
    assert energy.text == ("energy not measured: too few battery readings during the run (0.5 s run, one reading "
                           "every 1 s)")
    # Two readings while it ran (a 1.5 s run): a whole-run figure, as before.  (1500 + 500) / 2 = 1000 mW, 500 mW
    # above idle for the 1.6 s series, over 6 inferences: 133.3 mJ.
    longer = [_draw(-1, 500, 0.0), _draw(-1, 1500, 1.0), _draw(-1, 500, 1.6)]
    assert run_energy(idle, longer, work, ended_s=1.5, period_s=1.0).mj_per_unit == pytest.approx(500 * 1.6 / 6)
