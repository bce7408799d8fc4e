using System.Collections.Immutable;
using Ifcb.Contracts;
using Ifcb.Platform;

namespace Ifcb.Registry.Engine.Tests;

/// <summary>
/// The filter and order_by grammar (<see cref="SearchFilter"/>, <see cref="SearchOrder"/>) on its own: every operator on
/// every kind of key against one version, and the message of every kind of malformed input.
/// </summary>
public sealed class SearchLanguageTests
{
    private static readonly DateTimeOffset Created = DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000);

    /// <summary>plankton-classifier/7, READY, resnet18, f1_weighted 0.85, tags stage=candidate and "data set"=2024.</summary>
    private static readonly VersionIndexEntry Version = VersionIndexEntry.Of(new ModelVersion
    {
        ModelName = "plankton-classifier", Version = 7, Status = ModelVersionStatus.Ready, Arch = "resnet18", Resize = 224,
        Metrics = ImmutableSortedDictionary.CreateRange(StringComparer.Ordinal,
            [new KeyValuePair<string, double>("f1_weighted", 0.85), new("val_loss", 0.2)]),
        Tags = ImmutableSortedDictionary.CreateRange(StringComparer.Ordinal,
            [new KeyValuePair<string, string>("stage", "candidate"), new("data set", "2024")]),
        ImgNorm = ImgNorm.Parse("0.5 0.25"), DatasetFingerprint = "abc123",
        CheckpointBlob = "c", Sha256 = new string('0', 64), SizeBytes = 1,
        CreatedAt = Created, CreatedBy = "tests", UpdatedAt = Created.AddMinutes(5), UpdatedBy = "tests",
    });

    [Theory]
    // name: = != LIKE ILIKE
    [InlineData("name = 'plankton-classifier'", true)]
    [InlineData("name = 'plankton'", false)]
    [InlineData("name != 'plankton'", true)]
    [InlineData("name != 'plankton-classifier'", false)]
    [InlineData("name LIKE 'plank%'", true)]
    [InlineData("name LIKE 'Plank%'", false)]
    [InlineData("name ILIKE 'PLANK%'", true)]
    [InlineData("name like '%classifier'", true)]
    [InlineData("name LIKE 'plankton_classifier'", true)]
    [InlineData("name LIKE 'plankton\\_classifier'", false)]
    [InlineData("name LIKE '%ton-cla%'", true)]
    [InlineData("name LIKE 'plankton'", false)]
    [InlineData("name = \"plankton-classifier\"", true)]
    // tags: = != LIKE ILIKE; a missing tag matches nothing, not even !=
    [InlineData("tags.stage = 'candidate'", true)]
    [InlineData("tags.stage != 'candidate'", false)]
    [InlineData("tags.stage != 'production'", true)]
    [InlineData("tags.owner != 'anyone'", false)]
    [InlineData("tags.stage LIKE 'cand%'", true)]
    [InlineData("tags.stage ILIKE 'CAND%'", true)]
    [InlineData("tags.`data set` = '2024'", true)]
    // metrics: = != > >= < <=, with a number; a missing metric matches nothing
    [InlineData("metrics.f1_weighted = 0.85", true)]
    [InlineData("metrics.f1_weighted == 0.85", true)]
    [InlineData("metrics.f1_weighted != 0.85", false)]
    [InlineData("metrics.f1_weighted <> 0.9", true)]
    [InlineData("metrics.f1_weighted > 0.85", false)]
    [InlineData("metrics.f1_weighted >= 0.85", true)]
    [InlineData("metrics.f1_weighted < 0.9", true)]
    [InlineData("metrics.f1_weighted <= 0.8", false)]
    [InlineData("metrics.f1_weighted >= 8.5e-1", true)]
    [InlineData("metrics.val_loss > -1", true)]
    [InlineData("metrics.accuracy >= 0", false)]
    // params: text comparisons of the version's metadata
    [InlineData("params.arch = 'resnet18'", true)]
    [InlineData("params.arch != 'resnet18'", false)]
    [InlineData("params.arch LIKE 'resnet%'", true)]
    [InlineData("params.resize = '224'", true)]
    [InlineData("params.pretrained = 'false'", true)]
    [InlineData("params.dataset_fingerprint = 'abc123'", true)]
    [InlineData("params.source_commit = 'x'", false)]
    // status: = and !=, any case
    [InlineData("status = 'READY'", true)]
    [InlineData("status = 'ready'", true)]
    [InlineData("status != 'READY'", false)]
    [InlineData("status = 'FAILED'", false)]
    // version and times: numbers (Unix milliseconds)
    [InlineData("version = 7", true)]
    [InlineData("version > 7", false)]
    [InlineData("version <= 7", true)]
    [InlineData("creation_time > 1700000000000", false)]
    [InlineData("creation_time >= 1700000000000", true)]
    [InlineData("creation_timestamp = 1700000000000", true)]
    [InlineData("last_updated_time > 1700000000000", true)]
    [InlineData("last_updated_timestamp < 1700000000000", false)]
    // AND, any case; empty filters match everything
    [InlineData("name LIKE 'plank%' AND metrics.f1_weighted >= 0.8 AND tags.stage = 'candidate'", true)]
    [InlineData("name LIKE 'plank%' and metrics.f1_weighted >= 0.9", false)]
    [InlineData("", true)]
    [InlineData("   ", true)]
    public void Every_operator_on_every_kind_of_key(string filter, bool matches) =>
        Assert.Equal(matches, SearchFilter.ForVersions(filter).Matches(Version.ValueOf));

    [Theory]
    [InlineData("name = 'x' OR name = 'y'", "Invalid filter at position 12, 'OR': OR is not supported; conditions may only be joined with AND.")]
    [InlineData("name = 'x' name = 'y'", "Invalid filter at position 12, 'name': expected AND or the end of the filter after a condition.")]
    [InlineData("name = 'x' AND", "Invalid filter at position 15, end of input: expected a condition after AND.")]
    [InlineData("nme = 'x'", "Invalid filter at position 1, 'nme': unknown key; use name, version, status, tags.KEY, metrics.KEY, " +
        "params.KEY, creation_time or last_updated_time.")]
    [InlineData("foo.bar = 'x'", "Invalid filter at position 1, 'foo.bar': unknown key; use name, version, status, tags.KEY, " +
        "metrics.KEY, params.KEY, creation_time or last_updated_time.")]
    [InlineData("params.optimizer = 'sgd'", "Invalid filter at position 1, 'params.optimizer': versions have the params arch, pretrained, " +
        "resize, img_norm, dataset_fingerprint, source_training_job, source_commit.")]
    [InlineData("metrics.f1_weighted >= 'high'", "Invalid filter at position 24, ''high'': metrics.f1_weighted is a number; compare it " +
        "with a number, without quotes.")]
    [InlineData("metrics.f1_weighted LIKE 0.8", "Invalid filter at position 21, 'LIKE': metrics.f1_weighted is a number; compare it with " +
        "=, !=, >, >=, < or <=.")]
    [InlineData("tags.stage = production", "Invalid filter at position 14, 'production': expected a value: a quoted 'text' or a number.")]
    [InlineData("tags.stage = 3", "Invalid filter at position 14, '3': tags.stage is text; put the value in quotes, e.g. tags.stage = '3'.")]
    [InlineData("tags.stage > 'a'", "Invalid filter at position 12, '>': tags.stage is text; compare it with =, !=, LIKE or ILIKE.")]
    [InlineData("status = 'DONE'", "Invalid filter at position 10, ''DONE'': status is one of 'READY', 'PENDING' or 'FAILED'.")]
    [InlineData("status LIKE 'R%'", "Invalid filter at position 8, 'LIKE': status takes = or != only.")]
    [InlineData("name = 'x", "Invalid filter at position 8, ''x': the text is not closed with '.")]
    [InlineData("name ~ 'x'", "Invalid filter at position 6, '~': unexpected character.")]
    [InlineData("name ! 'x'", "Invalid filter at position 6, '!': did you mean '!='?")]
    [InlineData("name 'x'", "Invalid filter at position 6, ''x'': expected a comparison operator: =, !=, >, >=, <, <=, LIKE or ILIKE.")]
    [InlineData("name =", "Invalid filter at position 7, end of input: expected a value: a quoted 'text' or a number.")]
    [InlineData("= 'x'", "Invalid filter at position 1, '=': expected a key: name, version, status, tags.KEY, metrics.KEY, params.KEY, " +
        "creation_time or last_updated_time.")]
    [InlineData("metrics. >= 1", "Invalid filter at position 1, 'metrics.': expected a key name after the dot.")]
    [InlineData("tags.`stage = 'x'", "Invalid filter at position 1, 'tags.`stage = 'x'': the backtick-quoted key is not closed.")]
    [InlineData("version > 1e999", "Invalid filter at position 11, '1e999': not a finite number.")]
    public void Malformed_filters_name_the_position_and_token(string filter, string message)
    {
        var error = Assert.Throws<IfcbException>(() => SearchFilter.ForVersions(filter));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Equal(message, error.Message);
    }

    [Theory]
    [InlineData("metrics.f1_weighted >= 0.8", "Invalid filter at position 1, 'metrics.f1_weighted': unknown key; use name, tags.KEY, " +
        "creation_time or last_updated_time.")]
    [InlineData("status = 'READY'", "Invalid filter at position 1, 'status': unknown key; use name, tags.KEY, creation_time or " +
        "last_updated_time.")]
    public void Model_filters_know_only_model_keys(string filter, string message) =>
        Assert.Equal(message, Assert.Throws<IfcbException>(() => SearchFilter.ForModels(filter)).Message);

    [Fact]
    public void Model_filters_match_name_and_tags()
    {
        var filter = SearchFilter.ForModels("name ILIKE 'PLANK%' AND tags.team = 'whoi'");
        Assert.True(filter.AdmitsModelName("plankton"));
        Assert.False(filter.AdmitsModelName("diatoms"));
    }

    [Theory]
    [InlineData("metrics.f1_weighted DESC", "metrics.f1_weighted DESC")]
    [InlineData("creation_time asc, version desc", "creation_time ASC, version DESC")]
    [InlineData("name", "name ASC")]
    [InlineData("tags.`data set` DESC, params.arch", "tags.`data set` DESC, params.arch ASC")]
    [InlineData("", "")]
    public void Orderings_parse_to_their_canonical_form(string orderBy, string canonical) =>
        Assert.Equal(canonical, SearchOrder.ForVersions(orderBy).ToString());

    [Theory]
    [InlineData("metrics.f1_weighted DOWN", "Invalid order_by at position 21, 'DOWN': expected ASC, DESC, a comma or the end after a sort key.")]
    [InlineData("version DESC,", "Invalid order_by at position 14, end of input: expected a key: name, version, status, tags.KEY, " +
        "metrics.KEY, params.KEY, creation_time or last_updated_time.")]
    [InlineData("version, version DESC", "Invalid order_by at position 10, 'version': version is already a sort key.")]
    [InlineData("accuracy DESC", "Invalid order_by at position 1, 'accuracy': unknown key; use name, version, status, tags.KEY, " +
        "metrics.KEY, params.KEY, creation_time or last_updated_time.")]
    public void Malformed_orderings_name_the_position_and_token(string orderBy, string message) =>
        Assert.Equal(message, Assert.Throws<IfcbException>(() => SearchOrder.ForVersions(orderBy)).Message);

    [Fact]
    public void Models_are_ordered_by_name_and_times_only() =>
        Assert.Equal("Invalid order_by at position 1, 'tags.team': models can be ordered by name, creation_time or last_updated_time.",
            Assert.Throws<IfcbException>(() => SearchOrder.ForModels("tags.team")).Message);

    [Fact]
    public void Missing_values_sort_last_in_both_directions()
    {
        var values = new[] { SearchValue.Of(0.5), SearchValue.Missing, SearchValue.Of(0.9) };
        Assert.Equal([0.9, 0.5, null], values.Order(Comparer(descending: true)).Select(v => v.Number).ToArray());
        Assert.Equal([0.5, 0.9, null], values.Order(Comparer(descending: false)).Select(v => v.Number).ToArray());

        static Comparer<SearchValue> Comparer(bool descending) =>
            Comparer<SearchValue>.Create((a, b) => SearchValue.Compare(a, b, descending));
    }

    [Fact]
    public void A_filter_prints_in_canonical_form_with_quotes_doubled() =>
        Assert.Equal("name LIKE 'it''s%' AND metrics.f1 >= 0.8",
            SearchFilter.ForVersions("name like 'it''s%' and metrics.f1>=.8").ToString());
}
