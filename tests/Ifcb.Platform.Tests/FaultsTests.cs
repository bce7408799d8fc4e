using System.Net.Sockets;
using Azure;
using Grpc.Core;

namespace Ifcb.Platform.Tests;

public sealed class FaultsTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(408)]
    [InlineData(429)]
    [InlineData(500)]
    [InlineData(503)]
    public void Storage_outages_and_throttling_are_transient(int status) =>
        Assert.True(Faults.IsTransient(new RequestFailedException(status, "storage")));

    [Theory]
    [InlineData(400)]
    [InlineData(403)]
    [InlineData(404)]
    [InlineData(409)]
    [InlineData(412)]
    public void Storage_answers_about_the_request_itself_are_permanent(int status) =>
        Assert.False(Faults.IsTransient(new RequestFailedException(status, "storage")));

    [Fact]
    public void Peer_and_network_outages_are_transient_and_bad_input_is_not()
    {
        Assert.True(Faults.IsTransient(new RpcException(new Status(StatusCode.Unavailable, "down"))));
        Assert.True(Faults.IsTransient(new RpcException(new Status(StatusCode.DeadlineExceeded, ""))));
        Assert.True(Faults.IsTransient(new HttpRequestException("refused", new SocketException(111))));
        Assert.True(Faults.IsTransient(new IOException("reset", new SocketException(104))));
        Assert.True(Faults.IsTransient(IfcbException.Unavailable("registry down")));
        Assert.True(Faults.IsTransient(new AggregateException(new RequestFailedException(503, "a"), new TimeoutException())));

        Assert.False(Faults.IsTransient(new RpcException(new Status(StatusCode.InvalidArgument, "bad"))));
        Assert.False(Faults.IsTransient(new RpcException(new Status(StatusCode.ResourceExhausted, "too large"))));
        Assert.False(Faults.IsTransient(new InvalidDataException("corrupt PNG")));
        Assert.False(Faults.IsTransient(IfcbException.InvalidArgument("batch")));
        Assert.False(Faults.IsTransient(new AggregateException(new RequestFailedException(503, "a"), new InvalidDataException("b"))));
        Assert.False(Faults.IsTransient(new OperationCanceledException("stop", new TimeoutException())));
    }

    [Fact]
    public void A_reason_is_one_line_without_host_paths_or_stack()
    {
        Exception thrown;
        try
        {
            throw new InvalidDataException(
                "/tmp/ifcb-cache/training-host-42-abcdef/5f1c0d/diatom/IFCB1_2009_001.png is not a PNG\n   at Ifcb.Data.Decode()");
        }
        catch (InvalidDataException e)
        {
            thrown = e;
        }

        var reason = Faults.Reason(thrown);

        Assert.Equal("…/diatom/IFCB1_2009_001.png is not a PNG", reason);
    }

    [Fact]
    public void Unexpected_exceptions_keep_their_type_name_and_paths_inside_quotes_are_scrubbed_too()
    {
        var reason = Faults.Reason(new NullReferenceException("while reading '/home/worker/.cache/x/y/z.bin'"));

        Assert.Equal("NullReferenceException: while reading '…/y/z.bin'", reason);
        Assert.Equal("Unavailable: registry is down", Faults.Reason(new RpcException(new Status(StatusCode.Unavailable, "registry is down"))));
    }
}
